"""Everything training and backtesting read from the warehouse, loaded once: features, labels, closures."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models import rule_score
from models.features import DTYPE, MART, load_features, release_freed_memory, release_mapped, week_chunks, week_range
from models.labels import abnormal_closures, label_table
from models.metrics import week_monday
from models.training import SEED

MIN_POSITIVE_EVENTS = 5
MIN_WEEKS = 20
PRESAMPLE_NEGATIVES = 1_000_000  # negatives kept in the labelled rows (a province history is kept whole)
SCRATCH_PREFIX = ".tutorwatch-dataset-"  # + host and process id: the folder of a dataset's files


@dataclass
class Dataset:
    labelled: pd.DataFrame  # labelled mart rows (negatives sampled), features, `label`, `observed`, `weight`;
    # the derived features map a file (`_featured`), so every reader calls `release_mapped` once done with them
    indicators: list[str]
    features: list[str]
    weeks: list[str]  # every ISO week from the first to the last in the mart, without holes
    closures: pd.DataFrame  # abnormal closures from the filings: institution_id, closure_date
    rules: pd.DataFrame | None  # the transparent rule score per institution-week, when indicators.rules has one
    whole: Path | None = None  # every observed row of the whole weeks with its features (Parquet), or None
    _scratch: tempfile.TemporaryDirectory | None = field(default=None, repr=False)  # holds `whole`, the mapped file

    @property
    def folder(self) -> Path:
        """The dataset's folder on disk (see `_scratch`), removed with the dataset: room for what training's later
        steps need not hold in memory."""
        return Path(self._scratch.name)

    def test_rows(self, weeks) -> pd.DataFrame:
        """Every observed row of `weeks` with its features: read from `whole` (a national test block is never
        held beside the training rows), else the labelled rows of those weeks."""
        if self.whole is None:
            rows = self.labelled
            block = rows[rows["week"].isin(weeks) & rows["observed"]]
            release_mapped(rows)
            return block
        return frame_of(pq.read_table(self.whole, filters=[("week", "in", list(weeks))]))

    def rule_scores(self, rows: pd.DataFrame) -> np.ndarray | None:
        if self.rules is None:
            return None
        merged = rows[["institution_id", "week"]].merge(self.rules, on=["institution_id", "week"], how="left")
        scores = merged["score"].fillna(0.0).to_numpy()
        del merged
        # the merge's string keys pass through Arrow's pool, which keeps what it frees: ~120 MB at national, under
        # the next fold's fits, which numpy allocates elsewhere
        release_freed_memory()
        return scores

    def training_blocker(self) -> str | None:
        """Why no model can be trained on this history, or None when it can."""
        known = self.labelled[self.labelled["observed"] & (self.labelled["label"] == 1)]
        events = known["institution_id"].nunique()
        if events < MIN_POSITIVE_EVENTS or len(self.weeks) < MIN_WEEKS:
            return (f"training skipped: {events} abnormal closures with labelled weeks and {len(self.weeks)} weeks "
                    f"of history (a model needs at least {MIN_POSITIVE_EVENTS} closures and {MIN_WEEKS} weeks); "
                    "scores come from the transparent rule score")
        return None


def frame_of(table: pa.Table) -> pd.DataFrame:
    """`table` as a frame, each column freed once converted, and what that freed handed back: a national test
    block of 0.56 GB read from Parquet left 2.3 GB resident through `to_pandas()`, 0.75 GB so."""
    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    release_freed_memory()
    return frame


def iso_weeks_between(first_monday: pd.Timestamp, last_monday: pd.Timestamp) -> list[str]:
    mondays = pd.date_range(first_monday, last_monday, freq="7D")
    return [f"{d.isocalendar().year}-W{d.isocalendar().week:02d}" for d in mondays]


def load_dataset(con: duckdb.DuckDBPyConnection, as_of: date | None = None, whole_weeks: int = 0,
                 seed: int = SEED, negatives: int = PRESAMPLE_NEGATIVES) -> Dataset:
    """Labelled rows with their features and a `weight`, featured `CHUNK_ROWS` rows at a time.

    Every positive is kept, and each negative with probability r = `negatives` / their number (seeded),
    weighing 1/r, so a national history (10M institution-weeks) is never held whole; training samples from
    these rows again (`models.training.sample_rows`) and the weights keep its calibration and the baselines'
    average precision those of the whole history. Every observed row of the last `whole_weeks` observed
    weeks (the backtest's test blocks, measured on whole province-weeks) is also written to a Parquet file
    in the same pass when negatives are sampled (`Dataset.whole`, read back a test block at a time)."""
    keys = ["institution_id", "week"]
    table = label_table(con, as_of)  # filtered in Arrow: only the kept rows become a frame
    observed = table["observed"].to_numpy()
    observed_weeks = sorted(pc.unique(table["week"].filter(observed)).to_pylist())
    whole = observed_weeks[len(observed_weeks) - whole_weeks:] if whole_weeks else []
    negative = table["label"].to_numpy() == 0
    rate = min(1.0, negatives / max(1, int(negative.sum())))
    sampled = ~negative | (np.random.default_rng(seed).random(len(table)) < rate)
    scratch = _scratch(con)
    # a history kept whole already holds the whole weeks in `labelled`: written to disk only when sampled
    path = Path(scratch.name) / "whole_weeks.parquet" if whole and rate < 1 else None
    in_whole = pc.is_in(table["week"], pa.array(whole, pa.string())).to_numpy() & observed & (path is not None)
    kept = sampled | in_whole
    rows = table.filter(kept)
    del table  # 9M rows at national: only the kept ones are featured
    rows = frame_of(rows).assign(
        weight=np.where(negative, 1.0 / rate, 1.0)[kept], _sampled=sampled[kept], _whole=in_whole[kept])
    labelled, indicators, features = _featured(con, rows, keys, path, Path(scratch.name) / "derived_features.f32")
    span = week_range(con)
    weeks = iso_weeks_between(pd.Timestamp(span[0]), pd.Timestamp(span[1])) if span else []
    return Dataset(labelled, indicators, features, weeks, abnormal_closures(con), rule_score.scores(con, whole or None),
                   path if path and path.exists() else None, scratch)


def _scratch(con: duckdb.DuckDBPyConnection) -> tempfile.TemporaryDirectory:
    """A folder for the dataset's files (1.6 GB at national) beside the warehouse, where DuckDB spills too (the
    system's temporary folder for a database in memory): /tmp is memory on many systems (tmpfs: Debian 13,
    Fedora), and these files are what must leave memory; the system's folder too when the warehouse's is
    read-only (a backtest over a shared warehouse). The folders a killed training of this host left (their
    process is gone) are removed first."""
    path = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()[0]
    parent = Path(path).parent if path and os.access(Path(path).parent, os.W_OK) else Path(tempfile.gettempdir())
    mine = f"{SCRATCH_PREFIX}{socket.gethostname()}-"
    for left in parent.glob(f"{mine}*"):
        pid = left.name[len(mine):].split("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(left, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{mine}{os.getpid()}-", dir=parent)


def _running(pid: int) -> bool:
    """Whether process `pid` of this host exists (signal 0 only asks; Linux and macOS, where the bench runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _appended(writer: pq.ParquetWriter | None, path: Path, rows: pd.DataFrame) -> pq.ParquetWriter:
    """`rows` (weight 1) appended to the Parquet file `path`, a row group per week: a test block then reads its
    own weeks' groups only, not the chunks' other weeks too."""
    table = pa.Table.from_pandas(rows.assign(weight=1.0), preserve_index=False)
    writer = writer or pq.ParquetWriter(path, table.schema)
    for week in pc.unique(table["week"]).to_pylist():
        writer.write_table(table.filter(pc.equal(table["week"], week)))
    return writer


def _featured(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, keys: list[str], whole: Path | None,
              mapped: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The `_sampled` rows of `rows` with their features, featured a chunk of weeks at a time; the `_whole` rows
    (weight 1) go to the Parquet file `whole` in the same pass.

    The derived features (float32, the bulk: 706 of 977 MiB at national) go straight into one array mapping the
    file `mapped`, so the peak is the rest plus one chunk, not the chunks plus their concatenation, and a reader
    holds only the pages it touches until it calls `release_mapped` (a national fold's fits peaked on top of
    the whole array when it was on the heap)."""
    mart_weeks = [w for (w,) in con.execute(f"select distinct week from {MART}").fetchall()]
    heads, block, filled, writer = [], None, 0, None
    for chunk in week_chunks(con, mart_weeks) or [[]]:
        bounds = (week_monday(chunk[0]), week_monday(chunk[-1])) if chunk else (None, None)
        frame, indicators, features = load_features(con, *bounds)
        derived = [f for f in features if f not in indicators]
        part = frame.merge(rows, on=keys, how="inner")
        del frame
        sampled, in_whole = part.pop("_sampled").to_numpy(), part.pop("_whole").to_numpy()
        part = part[[c for c in part.columns if c not in derived] + derived]  # the labelled frame's order
        if whole is not None and in_whole.any():
            writer = _appended(writer, whole, part[in_whole])
        part = part[sampled]
        if block is None:
            block = _mapped_array(mapped, (int(rows["_sampled"].sum()), len(derived)))
        block[filled:filled + len(part)] = part[derived].to_numpy(DTYPE)
        release_mapped(block)
        filled += len(part)
        heads.append(part.drop(columns=derived))
        del part
        release_freed_memory()
    if writer:
        writer.close()
    head = pd.concat(heads, ignore_index=True)
    derived_frame = pd.DataFrame(block[:filled], columns=derived, copy=False)  # a copy would put it on the heap
    return pd.concat([head, derived_frame], axis=1), indicators, features


def _mapped_array(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A float32 array of `shape` backed by the file `path` (an empty one in memory: a file cannot map 0 bytes)."""
    if 0 in shape:
        return np.empty(shape, dtype=DTYPE)
    return np.memmap(path, dtype=DTYPE, mode="w+", shape=shape)
