"""Environment settings shared by the CLI, the Dagster resources and the dashboard.

Every setting has an embedded default so that one command runs the whole job on a laptop.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

ENV_WAREHOUSE = "TUTORWATCH_WAREHOUSE"
ENV_LANDING = "TUTORWATCH_LANDING"
ENV_OUT = "TUTORWATCH_OUT"
ENV_PII_KEY = "TUTORWATCH_PII_KEY"
ENV_MEMORY_LIMIT = "TUTORWATCH_MEMORY_LIMIT"
ENV_CASES_URL = "TUTORWATCH_CASES_URL"
ENV_RETRAIN = "TUTORWATCH_RETRAIN"  # "1" forces the risk model to retrain (`tutorwatch run --retrain`)
ENV_JOBS = "TUTORWATCH_JOBS"  # publication worker processes of `tutorwatch run`

DEFAULT_OUT = Path("out")


class PiiKeyMissing(RuntimeError):
    """Raised instead of ever hashing phone numbers without a key."""


def pii_key() -> bytes:
    key = os.environ.get(ENV_PII_KEY, "")
    if len(key) < 16:
        raise PiiKeyMissing(
            f"{ENV_PII_KEY} is not set (or shorter than 16 characters): refusing to ingest personal data "
            "without the pseudonymisation key. Set it in the environment or in .env (make demo creates one)."
        )
    return key.encode()


def load_dotenv(path: Path = Path(".env")) -> None:
    """Read KEY=VALUE lines into the environment without overriding what is already set."""
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            os.environ.setdefault(name.strip(), value.strip())


def ensure_dotenv_pii_key(path: Path = Path(".env")) -> bool:
    """Create a random PII key in .env if none is configured; returns True when one was written."""
    load_dotenv(path)
    if os.environ.get(ENV_PII_KEY):
        return False
    key = secrets.token_hex(32)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"{ENV_PII_KEY}={key}\n")
    os.environ[ENV_PII_KEY] = key
    return True


DUCKDB_MEMORY_SHARE = 0.6  # of TUTORWATCH_MEMORY_LIMIT; pandas frames, GX chunks and imports need the rest
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def memory_limit() -> int | None:
    """The process's memory budget in bytes from TUTORWATCH_MEMORY_LIMIT (`4GB`, `4GiB`, `500MB`), or None."""
    text = os.environ.get(ENV_MEMORY_LIMIT, "").strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)", text.upper())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"{ENV_MEMORY_LIMIT}={text!r}: expected a size such as 4GB, 4GiB or 500MB")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def duckdb_memory_limit(share: float = DUCKDB_MEMORY_SHARE) -> str | None:
    """DuckDB's share of the budget: its buffer pool is capped, the Python side of the same process is not,
    so handing DuckDB the whole budget let a 4 GB run peak near 8 GB."""
    budget = memory_limit()
    return None if budget is None else f"{int(budget * share) // 10**6}MB"
