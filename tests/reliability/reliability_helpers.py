"""Helpers of the reliability tests: the dashboard as a browser talks to it, and the CLI on the hand-made
landing."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pypdf import PdfReader
from werkzeug.serving import make_server

from pipelines.warehouse import connect
from test_run_generated import DIGIT_RUN, planted_in
from test_run_handmade import planted_pii


def logged_in(app, username: str):
    """A test client with its own session, logged in as a demo user (password `<username>-demo`)."""
    client = app.server.test_client()
    response = client.post("/login", data={"username": username, "password": f"{username}-demo"})
    assert response.status_code == 302, username
    return client


def callback(client, outputs: list[tuple[str, str]], inputs: list[tuple[str, str, object]],
             state: list[tuple[str, str, object]] = ()):
    """POST one Dash callback request, as the browser's renderer would; returns the Flask response."""
    def props(items):
        return [{"id": i, "property": p, "value": v} for i, p, v in items]
    output = (f"{outputs[0][0]}.{outputs[0][1]}" if len(outputs) == 1
              else ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..")
    outs = [{"id": i, "property": p} for i, p in outputs]
    return client.post("/_dash-update-component", json={
        "output": output, "outputs": outs[0] if len(outs) == 1 else outs, "inputs": props(inputs),
        "state": props(state), "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(app) -> Iterator[str]:
    """The app on a free loopback port (werkzeug, threaded) for a browser; yields its URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


def answer(response, component: str, prop: str):
    """The value a callback response sets on component.prop."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_json()["response"][component][prop]


# ---- the CLI on the hand-made landing -----------------------------------------------------------------

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "handmade_landing"
TUTORWATCH = Path(sys.executable).with_name("tutorwatch")  # the installed CLI
WEEKS = "2026-W02:2026-W03"
RISKY = "52110105MJ0123456N"  # red in 2026-W03 (tests/fixtures/README.md)
# The red institution's name in our copy of the fixture: a spreadsheet formula, SQL and a script at once.
HOSTILE_NAME = ('=HYPERLINK("http://example.invalid","星光")\'); DROP TABLE staging.orders; --'
                '<script>alert(1)</script><img src=x onerror="window.pwned=1">')


def new_root(parent: Path, name: str) -> Path:
    """`parent/name/landing`: the hand-made landing with the red institution renamed to HOSTILE_NAME."""
    root = parent / name
    shutil.copytree(FIXTURE, root / "landing")
    for path in (root / "landing" / "institutions").glob("*.csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            if row["institution_id"] == RISKY:
                row["name"] = HOSTILE_NAME
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return root


def command(root: Path) -> list[str]:
    return [str(TUTORWATCH), "run", "--landing", str(root / "landing"), "--out", str(root / "out"), "--weeks", WEEKS]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "GX_ANALYTICS_ENABLED": "false"}


def run(root: Path, *options: str) -> str:
    """Run the CLI to the end in `root` (its cwd keeps a developer's .env out); returns its output."""
    proc = subprocess.run(command(root) + list(options), cwd=root, env=environment(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


# ---- personal data at rest -----------------------------------------------------------------------------

def planted_numbers() -> set[bytes]:
    """Every phone and resident ID number written in the hand-made landing."""
    return {n.encode() for n in planted_pii(FIXTURE)}


def _duckdb_text(path: Path) -> bytes:
    """Every text value of a DuckDB file (its bytes are compressed); a copy is opened so that a WAL left
    by a killed run is replayed without touching the original."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copy(path, copy)
        if path.with_name(path.name + ".wal").exists():
            shutil.copy(path.with_name(path.name + ".wal"), copy.with_name(copy.name + ".wal"))
        with connect(copy) as con:
            columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                                  "where data_type in ('VARCHAR', 'JSON')").fetchall()
            return b"\n".join(str(v).encode() for s, t, c in columns
                              for (v,) in con.execute(f'select distinct "{c}" from "{s}"."{t}"').fetchall())


def readable(path: Path) -> bytes:
    """What a reader of the file can get at: the members of zip containers (.xlsx), the text of PDFs, the
    text values of DuckDB files — each besides the raw bytes."""
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            data += b"".join(archive.read(name) for name in archive.namelist())
    elif path.suffix == ".pdf":
        data += "".join(page.extract_text() for page in PdfReader(path).pages).encode()
    elif path.suffix == ".duckdb":
        data += _duckdb_text(path)
    return data


def pii_leaks(folder: Path, planted: set[bytes]) -> list[tuple[str, set[bytes]]]:
    """(file, planted numbers found in it) for every file under `folder`."""
    return [(str(p.relative_to(folder)), hits) for p in sorted(folder.rglob("*")) if p.is_file()
            if (hits := planted_in(DIGIT_RUN.findall(readable(p)), planted))]
