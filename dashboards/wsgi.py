"""gunicorn entry: `gunicorn dashboards.wsgi:server`, configured by TUTORWATCH_WAREHOUSE, TUTORWATCH_OUT,
TUTORWATCH_CASES_URL, TUTORWATCH_USERS (and TUTORWATCH_SECRET_KEY when running several workers)."""

import os
from pathlib import Path

from dashboards.app import create_app
from tutorwatch import settings

_out = Path(os.environ.get(settings.ENV_OUT, str(settings.DEFAULT_OUT)))
app = create_app(
    warehouse=Path(os.environ.get(settings.ENV_WAREHOUSE, str(_out / "warehouse.duckdb"))),
    out=_out,
    cases_url=os.environ.get(settings.ENV_CASES_URL),
    users_path=Path(os.environ["TUTORWATCH_USERS"]) if os.environ.get("TUTORWATCH_USERS") else None,
)
server = app.server
