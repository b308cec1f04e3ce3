"""Fixtures of the reliability tests. The ingestion tests' hand-made rows (tests/ingest/ingest_helpers.py)
are imported, not copied: their folder goes on sys.path here."""

from __future__ import annotations

import sys
from pathlib import Path

INGEST_TESTS = Path(__file__).resolve().parents[1] / "ingest"
if str(INGEST_TESTS) not in sys.path:
    sys.path.insert(0, str(INGEST_TESTS))
