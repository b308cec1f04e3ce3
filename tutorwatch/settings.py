"""Environment settings shared by the CLI, the Dagster resources and the dashboard.

Every setting has an embedded default so that one command runs the whole job on a laptop.
"""

from __future__ import annotations

import os
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


def memory_limit() -> str | None:
    return os.environ.get(ENV_MEMORY_LIMIT) or None
