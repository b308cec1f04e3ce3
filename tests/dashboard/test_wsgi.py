"""The gunicorn entry reads its configuration from the environment, and the login guards every route."""

from __future__ import annotations

import importlib
import sys

from dashboard_fixture import A1, C1


def test_wsgi_server_from_environment(warehouse, tmp_path, monkeypatch):
    out = tmp_path / "served"
    monkeypatch.setenv("TUTORWATCH_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("TUTORWATCH_OUT", str(out))
    monkeypatch.setenv("TUTORWATCH_CASES_URL", f"sqlite:///{tmp_path / 'elsewhere.sqlite'}")
    monkeypatch.delenv("TUTORWATCH_USERS", raising=False)
    sys.modules.pop("dashboards.wsgi", None)
    wsgi = importlib.import_module("dashboards.wsgi")
    client = wsgi.server.test_client()
    assert client.get("/").status_code == 302  # to the login page
    assert client.get("/download/warnings.csv").status_code == 401
    assert client.post("/_dash-update-component", json={}).status_code == 401
    refused = client.post("/login", data={"username": "beijing", "password": "wrong"})
    assert refused.status_code == 200 and "wrong username or password" in refused.get_data(as_text=True)
    assert client.post("/login", data={"username": "beijing", "password": "beijing-demo"}).status_code == 302
    csv = client.get("/download/warnings.csv?week=2026-W10").get_data(as_text=True)
    assert C1 in csv and A1 not in csv
    assert (tmp_path / "elsewhere.sqlite").exists() and not (out / "cases.sqlite").exists()
    sys.modules.pop("dashboards.wsgi", None)
