"""A large batch is checked and merged in groups of whole files: the same warehouse as one group."""

from __future__ import annotations

import pytest

from ingest_helpers import PII_KEY
from pipelines.ingest import ingest_landing, loading
from pipelines.warehouse import connect
from tutorwatch.generator import generate

TABLES = {  # what ingestion leaves behind, without the load time
    "staging": "SELECT * EXCLUDE (_loaded_at) FROM staging.{feed}",
    "history": "SELECT * EXCLUDE (_loaded_at, _superseded_at), _superseded_at IS NULL FROM staging.{feed}_history",
    "quarantine": "SELECT file_name, row_number, rule, detail, released_at IS NULL FROM quarantine.rows "
                  "WHERE feed = '{feed}'",
    "ledger": "SELECT file_name, status, rows_delivered, rows_inserted, rows_corrected, rows_unchanged, "
              "rows_quarantined, amount_fen_loaded, amount_fen_quarantined FROM ops.files WHERE feed = '{feed}'",
}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("groups")
    generate(scale="demo", weeks=14, seed=11, out=root, start="2025-09-01", institutions=80)
    return root / "landing"


def _ingested(path, landing, monkeypatch, group_rows: int) -> tuple[object, dict]:
    monkeypatch.setattr(loading, "GROUP_ROWS", group_rows)
    con = connect(path)
    summary = ingest_landing(con, landing, PII_KEY)
    return con, summary


def _content(con, feed: str) -> dict[str, list]:
    return {name: sorted(con.execute(sql.format(feed=feed)).fetchall(), key=repr) for name, sql in TABLES.items()}


def test_groups_of_files_give_the_warehouse_of_one_batch(tmp_path, landing, monkeypatch):
    whole, one = _ingested(tmp_path / "whole.duckdb", landing, monkeypatch, 10**9)
    grouped, many = _ingested(tmp_path / "grouped.duckdb", landing, monkeypatch, 3_000)
    groups = grouped.execute("SELECT max(_group) + 1 FROM ops.last_batch_consumptions").fetchone()[0]
    assert groups >= 4  # the consumptions really were merged in several groups
    assert whole.execute("SELECT count(DISTINCT _group) FROM ops.last_batch_consumptions").fetchone()[0] == 1
    for feed in loading.FEEDS:
        assert _content(grouped, feed) == _content(whole, feed), feed
        assert many.feeds[feed].metadata() == one.feeds[feed].metadata(), feed
    # the contract check reads every group
    assert (grouped.execute("SELECT count(*) FROM ops.last_batch_consumptions_checked").fetchone()
            == whole.execute("SELECT count(*) FROM ops.last_batch_consumptions_checked").fetchone())
