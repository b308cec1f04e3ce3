"""Negative sampling for large histories: weights by hand, the dataset's pre-sample, and calibration that stays
a probability of the whole history however few negatives the model saw."""

import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.dataset import SCRATCH_PREFIX, load_dataset
from models.features import load_features, release_mapped
from models.metrics import week_monday
from models.labels import label_table
from models.training import LOGISTIC, fit_calibrated, predict, sample_rows
from pipelines.warehouse import connect


def test_every_sampled_negative_stands_for_the_same_number_of_rows():
    # 10 positives; 600 negatives already sampled at 1/4 (weight 4, standing for 2,400) and 600 kept whole:
    # 3,000 negatives in all, so a cap of 300 is a rate of 1/10 and every kept negative weighs 10.
    frame = pd.DataFrame({
        "week": ["2026-W10"] * 1210, "observed": True,
        "label": [1] * 10 + [0] * 1200, "weight": [1.0] * 10 + [4.0] * 600 + [1.0] * 600})
    rows, weights = sample_rows(frame, seed=5, cap=300)
    positive = rows["label"].to_numpy() == 1
    assert positive.sum() == 10 and (weights[positive] == 1).all()
    assert weights[~positive] == pytest.approx(np.full((~positive).sum(), 10.0))
    # chances 0.4 and 0.1: about 240 and 60 rows kept from the two pools
    kept_prior = rows.loc[~positive, "weight"]
    assert 190 < (kept_prior == 4).sum() < 290 and 35 < (kept_prior == 1).sum() < 85
    again, _ = sample_rows(frame, seed=5, cap=300)
    assert again.index.equals(rows.index)
    assert not sample_rows(frame, seed=6, cap=300)[0].index.equals(rows.index)


def test_unobserved_rows_and_other_weeks_are_never_sampled():
    frame = pd.DataFrame({"week": ["2026-W10", "2026-W11", "2026-W11", "2026-W12"],
                          "observed": [True, True, True, False], "label": [0, 1, 0, 0]})
    rows, weights = sample_rows(frame, seed=1, weeks=["2026-W11", "2026-W12"])
    assert list(rows.index) == [1, 2] and list(weights) == [1.0, 1.0]


def test_the_dataset_samples_negatives_at_one_rate_and_keeps_the_test_weeks_whole_on_disk(synthetic_warehouse):
    con = connect(synthetic_warehouse)
    every = label_table(con).to_pandas()
    ds = load_dataset(con, whole_weeks=4, negatives=500)
    observed_weeks = sorted(every.loc[every["observed"], "week"].unique())
    kept = ds.labelled
    assert kept["label"].sum() == every["label"].sum()
    pool = int((every["label"] == 0).sum())
    sampled = kept["label"] == 0
    assert kept.loc[sampled, "weight"].to_numpy() == pytest.approx(np.full(sampled.sum(), pool / 500))
    assert kept.loc[~sampled, "weight"].eq(1).all()
    assert abs(sampled.sum() - 500) < 4 * np.sqrt(500)
    assert ds.weeks == sorted(every["week"].unique())  # the weeks come from the mart, not from the sample
    # the test blocks: every observed row of the last 4 observed weeks, featured, each standing for itself
    test = ds.test_rows(observed_weeks[-4:])
    expected = every[every["week"].isin(observed_weeks[-4:]) & every["observed"]]
    assert len(test) == len(expected) > sampled[kept["week"].isin(observed_weeks[-4:])].sum()
    assert sorted(zip(test["institution_id"], test["week"])) == sorted(zip(expected["institution_id"],
                                                                          expected["week"]))
    assert test["weight"].eq(1).all() and list(test.columns) == list(kept.columns)
    direct = load_features(con, week_monday(observed_weeks[-4]), week_monday(observed_weeks[-1]))[0]
    direct = direct.merge(test[["institution_id", "week"]], on=["institution_id", "week"])
    pd.testing.assert_frame_equal(test[["institution_id", "week", *ds.features]].reset_index(drop=True),
                                  direct[["institution_id", "week", *ds.features]].reset_index(drop=True),
                                  check_dtype=False)
    assert ds.test_rows(observed_weeks[-1:])["week"].eq(observed_weeks[-1]).all()


def test_a_history_kept_whole_gives_test_blocks_equal_to_its_labelled_rows(synthetic_warehouse):
    """Below the presample size nothing is sampled and nothing is written to disk: the test blocks are the
    labelled rows themselves, dtypes and all, so a province backtest is the one it was before."""
    ds = load_dataset(connect(synthetic_warehouse), whole_weeks=4)
    assert ds.labelled["weight"].eq(1).all() and ds.whole is None
    weeks = sorted(ds.labelled.loc[ds.labelled["observed"], "week"].unique())[-4:]
    rows = ds.labelled[ds.labelled["week"].isin(weeks) & ds.labelled["observed"]]
    keys = ["institution_id", "week"]
    pd.testing.assert_frame_equal(ds.test_rows(weeks).sort_values(keys).reset_index(drop=True),
                                  rows.sort_values(keys).reset_index(drop=True))


def test_calibration_follows_the_whole_history_when_few_negatives_are_sampled(synthetic_warehouse):
    """With 1 negative in ~30 kept, the weights keep the mean score at the base rate; unweighted, the same
    sample would say a closure is about 30 times likelier than it is."""
    ds = load_dataset(connect(synthetic_warehouse))
    rows = ds.labelled[ds.labelled["observed"]]
    base_rate = rows["label"].mean()
    negatives = int((rows["label"] == 0).sum())
    model = fit_calibrated(LOGISTIC, ds.labelled, ds.features, cap=negatives // 30)[0]
    mean_score = predict(model, rows, ds.features).mean()
    assert base_rate / 2 < mean_score < base_rate * 2


def mapped_resident_kib(name: str) -> tuple[int, int]:
    """(size, resident) in KiB of this process's mappings of files named `name`, from /proc/self/smaps."""
    size = resident = 0
    inside = False
    for line in open("/proc/self/smaps"):
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
            inside = f"/{name}" in line  # the header ends with the file's path
        elif inside and line.startswith(("Size:", "Rss:")):
            kib = int(line.split()[1])
            size, resident = (size + kib, resident) if line.startswith("Size:") else (size, resident + kib)
    return size, resident


def test_the_derived_features_stay_in_their_file_once_each_reader_is_done(synthetic_warehouse):
    """The derived features (706 MiB at national) map a file beside the warehouse (/tmp may be memory itself):
    loading, sampling, fitting and predicting each hand back the pages they touched, so a fold's fits do not
    peak on top of the whole array. The file goes with the dataset."""
    ds = load_dataset(connect(synthetic_warehouse), whole_weeks=4, negatives=500)
    name = "derived_features.f32"
    assert len(list(synthetic_warehouse.parent.glob(f"{SCRATCH_PREFIX}*/{name}"))) == 1
    derived = [f for f in ds.features if f not in ds.indicators]
    size, resident = mapped_resident_kib(name)
    assert size >= len(ds.labelled) * len(derived) * 4 // 1024 > 0 and resident == 0  # written, then let go
    assert np.isfinite(ds.labelled[derived].to_numpy()).any()
    assert mapped_resident_kib(name)[1] > 0  # a reader's touch shows: the measure can see it
    release_mapped(ds.labelled)
    assert mapped_resident_kib(name)[1] == 0
    model = fit_calibrated(LOGISTIC, ds.labelled, ds.features)[0]
    assert mapped_resident_kib(name)[1] == 0
    assert len(predict(model, ds.labelled, ds.features)) == len(ds.labelled)
    assert mapped_resident_kib(name)[1] == 0
    del ds
    assert not list(synthetic_warehouse.parent.glob(f"{SCRATCH_PREFIX}*"))


def test_a_killed_trainings_folder_is_removed_and_a_running_ones_kept(synthetic_warehouse):
    """A killed training leaves its dataset's folder (1.6 GB at national) beside the warehouse; the next load
    removes it, but not a folder whose process still runs, nor one of another host sharing the disk."""
    host = socket.gethostname()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folders = {name: synthetic_warehouse.parent / f"{SCRATCH_PREFIX}{name}-abc" for name in
               (f"{host}-{ended.stdout.strip()}", f"{host}-{os.getppid()}", f"other-host-{ended.stdout.strip()}")}
    for folder in folders.values():
        folder.mkdir()
        (folder / "derived_features.f32").write_bytes(b"\0" * 4096)
    ds = load_dataset(connect(synthetic_warehouse))
    left = {name for name, folder in folders.items() if folder.exists()}
    assert left == {f"{host}-{os.getppid()}", f"other-host-{ended.stdout.strip()}"}
    assert len(list(synthetic_warehouse.parent.glob(f"{SCRATCH_PREFIX}{host}-{os.getpid()}-*"))) == 1
    del ds


def test_a_read_only_warehouse_folder_puts_the_datasets_files_in_the_systems_folder(synthetic_warehouse,
                                                                                     monkeypatch, tmp_path_factory):
    """A backtest may read a shared warehouse from a folder it cannot write (as root here, every folder is
    writable, so the check is told so)."""
    system = tmp_path_factory.mktemp("system-tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(system))
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != synthetic_warehouse.parent)
    ds = load_dataset(connect(synthetic_warehouse, read_only=True))
    assert not list(synthetic_warehouse.parent.glob(f"{SCRATCH_PREFIX}*"))
    assert len(list(system.glob(f"{SCRATCH_PREFIX}*/derived_features.f32"))) == 1
    del ds
