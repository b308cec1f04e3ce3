"""Suite-wide settings: no analytics calls, a PII key for tests, the repository root, fresh interpreters and
DuckDB's memory limit read back."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("TUTORWATCH_PII_KEY", "test-key-not-secret-0123456789abcdef")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def fresh_python(tmp_path) -> Callable[..., str]:
    """Runs a script in a fresh interpreter, where nothing this session imported or allocated is loaded yet,
    with `env` added to the environment; returns what it printed (a failure shows its stderr)."""
    def run(source: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
        script = tmp_path / "fresh.py"
        script.write_text(source, encoding="utf-8")
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        assert done.returncode == 0, done.stderr
        return done.stdout
    return run


@pytest.fixture
def duckdb_limit() -> Callable[[duckdb.DuckDBPyConnection], float]:
    """Reads a connection's memory limit back in bytes (DuckDB shows it rounded, e.g. '2.2 GiB')."""
    def read(con: duckdb.DuckDBPyConnection) -> float:
        number, unit = con.execute("select current_setting('memory_limit')").fetchone()[0].split()
        return float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
    return read
