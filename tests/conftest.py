"""Suite-wide settings: no analytics calls, a PII key for tests, and the repository root."""

import os
from pathlib import Path

import pytest

os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("TUTORWATCH_PII_KEY", "test-key-not-secret-0123456789abcdef")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO
