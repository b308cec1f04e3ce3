"""Fixtures of the reliability tests. The ingestion tests' hand-made rows (tests/ingest/ingest_helpers.py),
the dashboard tests' hand-made warehouse (tests/dashboard/dashboard_fixture.py) and the PII scans of
tests/test_run_*.py are imported, not copied: their folders go on sys.path here."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS, TESTS / "ingest", TESTS / "dashboard"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from dashboard_fixture import build_warehouse  # noqa: E402  (needs the path above)
from dashboards.app import create_app  # noqa: E402
from reliability_helpers import new_root, run  # noqa: E402


@pytest.fixture
def dashboard(tmp_path: Path):
    """The Dash app over the dashboard tests' hand-made warehouse (2026-W10), demo users, SQLite cases."""
    warehouse = build_warehouse(tmp_path / "warehouse.duckdb")
    return create_app(warehouse, tmp_path / "out", f"sqlite:///{tmp_path / 'cases.sqlite'}",
                      today=lambda: date(2026, 3, 9), secret_key="test-secret")


@pytest.fixture(scope="session")
def reference_root(tmp_path_factory) -> Path:
    """An uninterrupted `tutorwatch run` over the hand-made landing with the hostile name (landing/, out/)."""
    root = new_root(tmp_path_factory.mktemp("reference"), "reference")
    run(root)
    return root
