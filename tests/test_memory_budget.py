"""TUTORWATCH_MEMORY_LIMIT is the process's budget: DuckDB gets its share and hands back what it frees, a bad value
is refused clearly."""

import pytest

from pipelines.warehouse import FRAMES_SHARE, connect, memory_lowered
from tutorwatch import settings


@pytest.mark.parametrize(("budget", "bytes_"), [("4GB", 4 * 10**9), ("4GiB", 4 * 2**30), ("500 mb", 500 * 10**6)])
def test_duckdb_gets_its_share_of_the_budget(tmp_path, monkeypatch, duckdb_limit, budget, bytes_):
    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, budget)
    assert settings.memory_limit() == bytes_
    con = connect(tmp_path / "w.duckdb")
    try:
        assert duckdb_limit(con) == pytest.approx(bytes_ * settings.DUCKDB_MEMORY_SHARE, rel=0.05)  # shown to 0.1 GiB
    finally:
        con.close()


def test_a_size_without_a_number_is_refused(monkeypatch):
    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, "four gigabytes")
    with pytest.raises(ValueError, match="TUTORWATCH_MEMORY_LIMIT='four gigabytes'"):
        settings.duckdb_memory_limit()


def test_no_budget_leaves_duckdb_its_default(monkeypatch):
    monkeypatch.delenv(settings.ENV_MEMORY_LIMIT, raising=False)
    assert settings.memory_limit() is None and settings.duckdb_memory_limit() is None


def test_what_duckdb_frees_goes_back_to_the_system(tmp_path, fresh_python):
    """A national stage runs many large queries in one process: what a finished query freed must leave the
    process, not wait in DuckDB's allocator (that was 0.7 GiB of a national scoring run's peak). In a fresh
    interpreter, so that no earlier test's allocations blur the resident size."""
    printed = fresh_python(
        "import sys, time\n"
        "from pipelines.warehouse import connect\n"
        "def resident(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        f"con = connect({str(tmp_path / 'w.duckdb')!r})\n"
        "before = resident()\n"
        "con.execute('select count(*) from (select i % 5000000 as k, max(i) from range(30000000) t(i) group by k)')"
        ".fetchall()\n"
        "grown = resident() - before\n"
        "deadline = time.monotonic() + 10\n"
        "while resident() - before > grown / 2 and time.monotonic() < deadline:\n"
        "    time.sleep(0.2)\n"
        "print(grown // 2**20, (resident() - before) // 2**20)\n",
        env={settings.ENV_MEMORY_LIMIT: "4GB"}, timeout=120)
    grown, left = map(int, printed.split())
    assert grown > 50  # MiB: the query did allocate (~200 alone, less beside other work)
    assert left < grown / 2


def test_training_lends_duckdbs_cache_to_the_fits_and_takes_it_back(tmp_path, monkeypatch, duckdb_limit):
    """While the models fit, DuckDB's limit is low, so its cached blocks are evicted. Afterwards it is the
    budget's share again, exactly, not the rounded value DuckDB shows (restoring that lost 0.1 GiB each time)."""
    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, "4GB")
    con = connect(tmp_path / "w.duckdb")
    try:
        con.execute("create table t as select i, i::varchar as s from range(3000000) t(i)")
        con.execute("select sum(i), max(s) from t").fetchall()
        cached = con.execute("select sum(memory_usage_bytes) from duckdb_memory()").fetchall()[0][0]
        with memory_lowered(con, keep="4MB"):  # the table's blocks are ~12 MB
            assert duckdb_limit(con) == pytest.approx(4 * 10**6, rel=0.05)
            held = con.execute("select sum(memory_usage_bytes) from duckdb_memory()").fetchall()[0][0]
        for _ in range(3):
            with memory_lowered(con):
                pass
        assert duckdb_limit(con) == pytest.approx(4 * 10**9 * settings.DUCKDB_MEMORY_SHARE, rel=0.05)
        assert con.execute("select current_setting('memory_limit')").fetchall()[0][0] == "2.2 GiB"
        assert cached > 4 * 10**6 >= held
    finally:
        con.close()


def test_a_frame_read_from_parquet_leaves_no_more_than_itself_resident(tmp_path, fresh_python):
    """Arrow's allocator keeps the pages it freed: reading the backtest's national test block (0.56 GB) as a
    frame left 2.3 GB resident through the fits that followed. `frame_of` converts column by column and hands
    back what the conversion freed."""
    printed = fresh_python(
        "import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq\n"
        "from models.dataset import frame_of\n"
        "def resident(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        f"path = {str(tmp_path / 'block.parquet')!r}\n"
        "rng = np.random.default_rng(0)\n"
        "n = 1_000_000\n"
        "columns = {'institution_id': pa.array([f'9111{i:014d}' for i in range(n)]),\n"
        "           **{f'f{j}': pa.array(rng.random(n, dtype=np.float32)) for j in range(40)}}\n"
        "pq.write_table(pa.table(columns), path, row_group_size=250_000)\n"
        "del columns\n"
        "pa.default_memory_pool().release_unused()\n"
        "before = resident()\n"
        "frame = frame_of(pq.read_table(path))\n"
        "print(frame.memory_usage(deep=True).sum() // 2**20, (resident() - before) // 2**20)\n",
        timeout=120)
    size, grown = map(int, printed.split())
    assert size > 150  # MiB
    assert grown < 1.5 * size


def test_what_the_c_heap_freed_is_handed_back(fresh_python):
    """glibc keeps freed heap memory resident for the process's next allocations: after national training 0.47
    GB of it sat under the scoring that followed. `release_freed_memory` trims it (the small arrays here, like
    the frames' columns, come from the heap, not from mappings of their own)."""
    from models.features import _malloc_trim

    if _malloc_trim() is None:
        pytest.skip("not glibc: there is no malloc_trim")
    printed = fresh_python(
        "import numpy as np\n"
        "from models.features import release_freed_memory\n"
        "def resident(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "release_freed_memory()\n"
        "before = resident()\n"
        "arrays = [np.ones(1_000) for _ in range(40_000)]  # 8 kB each, 320 MB\n"
        "keep = arrays[-1]\n"
        "del arrays\n"
        "kept = resident() - before\n"
        "release_freed_memory()\n"
        "print(kept // 2**20, (resident() - before) // 2**20)\n",
        timeout=120)
    kept, left = map(int, printed.split())
    assert kept > 200  # MiB: freed, yet still the process's
    assert left < 30


def test_the_rule_score_baseline_hands_back_what_its_merge_kept(fresh_python):
    """The backtest's rule-score baseline merges a test block's keys with every institution-week's rule score;
    the merge's string keys pass through Arrow's pool, which kept ~120 MB of freed pages under the national
    folds' fits. `rule_scores` hands them back."""
    printed = fresh_python(
        "import numpy as np, pandas as pd\n"
        "from models.dataset import Dataset\n"
        "from models.features import release_freed_memory\n"
        "def resident(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "rng = np.random.default_rng(0)\n"
        "n = 2_000_000\n"
        "rules = pd.DataFrame({'institution_id': pd.array([f'9111{i % 150_000:014d}' for i in range(n)], dtype='str'),\n"
        "                      'week': pd.array([f'2025-W{1 + i // 150_000:02d}' for i in range(n)], dtype='str'),\n"
        "                      'score': rng.random(n)})\n"
        "test = rules.iloc[::4][['institution_id', 'week']].reset_index(drop=True)\n"
        "ds = Dataset(pd.DataFrame(), [], [], [], pd.DataFrame(), rules)\n"
        "release_freed_memory()\n"
        "before = resident()\n"
        "scores = ds.rule_scores(test)\n"
        "print(len(scores), (resident() - before) // 2**20)\n",
        timeout=120)
    rows, grown = map(int, printed.split())
    assert rows == 500_000
    assert grown < 30  # MiB: 4 MB of scores; 118 MiB stayed resident before


def test_the_dataset_is_featured_under_a_smaller_duckdb_share(tmp_path, monkeypatch, duckdb_limit):
    """Training holds the labelled rows while DuckDB features the mart chunk by chunk: DuckDB gets a quarter of
    the budget meanwhile, and its share back afterwards, also when loading fails."""
    from models import scoring

    seen = []

    def load_dataset(con, **_):
        seen.append(duckdb_limit(con))
        raise RuntimeError("stop here")

    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, "4GB")
    monkeypatch.setattr(scoring, "load_dataset", load_dataset)
    con = connect(tmp_path / "w.duckdb")
    try:
        with pytest.raises(RuntimeError, match="stop here"):
            scoring.train_risk_model(con, tmp_path / "out")
        assert seen == [pytest.approx(4 * 10**9 * FRAMES_SHARE, rel=0.05)]
        assert duckdb_limit(con) == pytest.approx(4 * 10**9 * settings.DUCKDB_MEMORY_SHARE, rel=0.05)
    finally:
        con.close()
