"""`bench/results.md` from the figures of every scale run so far (`<cache>/<label>/figures.json`)."""

from __future__ import annotations

import json
from pathlib import Path

STAGES = {  # Dagster step key -> stage of the weekly run; the rest is ingestion (feeds) or contracts (checks)
    "bank_continuity_breaks": "ingest: continuity breaks",
    "institution_week_indicators": "indicators",
    "risk_model": "model: training + backtest", "model_backtest": "model: training + backtest",
    "institution_week_scores": "model: scoring", "institution_week_scores_score_drift": "model: scoring",
    "warnings": "warnings",
}
STAGE_ORDER = ("ingest: read, route, merge", "ingest: GX contract checks", "ingest: continuity breaks", "indicators",
               "model: training + backtest", "model: scoring", "warnings", "publication")
# the steps measure MiB (ru_maxrss and /proc in KiB / 1024); the target is TUTORWATCH_MEMORY_LIMIT=4GB, 4·10⁹ bytes
TARGET_PEAK_MIB = 4 * 10**9 / 2**20
TARGETS = "full pipeline ≤ 2× the reference, ≥ 5× faster than pandas, peak ≤ 4 GB, incremental run ≤ 60 s"


def stage_of(step: str) -> str:
    if step in STAGES:
        return STAGES[step]
    return "ingest: GX contract checks" if step.endswith("_contract") else "ingest: read, route, merge"


def stages(timing: dict) -> dict[str, tuple[float, float]]:
    """Per stage: (seconds, peak MiB of the process tree while it ran)."""
    out: dict[str, tuple[float, float]] = {}
    for step, figures in timing["figures"].get("steps", {}).items():
        seconds, peak = out.get(stage_of(step), (0.0, 0.0))
        out[stage_of(step)] = (seconds + figures["seconds"], max(peak, figures["peak_mb"]))
    out["publication"] = (timing["figures"].get("publication_s", 0), timing["figures"].get("publication_peak_mb", 0))
    return out


def _row(label: str, timing: dict | None, rows: int) -> str:
    if timing is None:
        return f"| {label} | not run | | | |"
    if not timing["ok"]:
        return f"| {label} | failed after {timing['seconds']:.0f} s | | {timing['peak_mb']:,.0f} | |"
    return (f"| {label} | {timing['seconds']:,.1f} | {rows / timing['seconds']:,.0f} | {timing['peak_mb']:,.0f} | "
            f"{'✓' if timing['peak_mb'] <= TARGET_PEAK_MIB else '✗'} |")


def _ratio(numerator: dict | None, denominator: dict | None) -> float | None:
    if not (numerator and denominator and numerator["ok"] and denominator["ok"]):
        return None
    return numerator["seconds"] / denominator["seconds"]


def section(f: dict) -> str:
    rows = sum(f["convert"]["figures"]["delivered"].values()) if f.get("convert") else 0
    rows_a = (f.get("pipeline_a") or {}).get("figures", {}).get("rows_delivered") or rows
    a, b, c, inc = (f.get(k) for k in ("pipeline", "reference", "pandas", "incremental"))
    reference_limit = f" (memory limit {f['reference_memory_limit']})" if b and f.get("reference_memory_limit") else ""
    chunks = (c or {}).get("figures", {}).get("chunks", 1)
    lines = [
        f"## {f['label']} ({f['date']}, {f['cpus']} cores shared, TUTORWATCH_MEMORY_LIMIT={f['memory_limit']}"
        + (f"; code {f['commit']}" if f.get("commit") else "") + ")", "",
    ]
    if gen := f.get("generate"):
        lines += [f"Generation: {gen['seconds']:,.0f} s, peak {gen['peak_mb']:,.0f} MB (cached; not timed below).", ""]
        if summary := gen["figures"].get("summary"):
            lines += ["```", summary.strip(), "```", ""]
    if conv := f.get("convert"):
        delivered = conv["figures"]["delivered"]
        lines += [f"Delivered rows: {rows:,} (" + ", ".join(f"{k} {v:,}" for k, v in delivered.items())
                  + (f"). Landing → one Parquet per feed (latest version per key) in {conv['seconds']:,.0f} s, "
                     "outside the timings; (b) and (c) read those files, (a) reads the landing files."
                     if conv["seconds"] else ")."), ""]
    lines += [
        "| step | wall s | rows/s | peak MiB | ≤ 4 GB |", "| --- | --- | --- | --- | --- |",
        _row("(a) full pipeline, landing → published lists", a, rows),
        *([_row("full pipeline over landing A (every week before the newest)", f["pipeline_a"], rows_a)]
          if f.get("pipeline_a") else []),
        _row("(b) reference: one DuckDB SQL, core indicators" + reference_limit, b, rows),
        _row("(c) pandas, core indicators" + (f" ({chunks} chunks of institutions)" if chunks > 1 else ""), c, rows),
        _row(f"incremental run: + week {f.get('newest_week', '?')}", inc,
             (inc or {}).get("figures", {}).get("rows_delivered") or rows),
        "",
    ]
    ab, ca = _ratio(a, b), _ratio(c, a)
    lines += [
        f"- a/b = {ab:.1f} (target ≤ 2: {'met' if ab <= 2 else 'missed'})" if ab else "- a/b: not measured",
        f"- c/a = {ca:.2f} (target ≥ 5: {'met' if ca >= 5 else 'missed'})" if ca else "- c/a: not measured",
    ]
    if inc and inc["ok"]:
        lines.append(f"- incremental run {inc['seconds']:.0f} s (target ≤ 60 s: "
                     f"{'met' if inc['seconds'] <= 60 else 'missed'})")
    for key, failure in f.get("failed", {}).items():
        earlier = f.get("commits", {}).get(key)
        lines.append(f"- the latest {key} run (code {', '.join(failure['commits'])}) failed after "
                     f"{failure['seconds']:,.0f} s (peak {failure['peak_mb']:,.0f} MiB); the figures above are the "
                     f"earlier run's" + (f" (code {', '.join(earlier)})" if earlier else ""))
    for key, commits in f.get("commits", {}).items():
        if len(commits) > 1:  # only finished runs: an unfinished one's parts are under `attempts`
            lines.append(f"- {key} ran in {len(commits)} parts, each resuming the killed one (code "
                         f"{', '.join(commits)}): its time is the sum of the parts' (`python -m bench --resume`)")
    lines.append("")
    if (ind := f.get("indicators")) and ind["ok"]:
        phases = ind["figures"]["seconds"]
        lines += [
            f"Indicators library alone (`bench/steps.py indicators`: staging loaded from the Parquet, no ingest; "
            f"peak {ind['peak_mb']:,.0f} MB): all {ind['figures']['mart_rows']:,} rows over landing A in "
            f"{phases['full']:,.1f} s; after loading the newest week's rows ({phases['load_newest_week']:,.1f} s), "
            f"the incremental refresh recomputed {ind['figures']['weeks_recomputed']} weeks (from "
            f"{ind['figures']['first_week_recomputed']}) in {phases['incremental']:,.1f} s."
            + (f" Full indicators / reference (b) = {phases['full'] / b['seconds']:.1f} (26 indicators against 7)."
               if b and b["ok"] else ""), "",
        ]
    runs = [(name, f[key]) for name, key in (("full pipeline (a)", "pipeline"), ("full run over landing A", "pipeline_a"),
                                             ("incremental run", "incremental"))
            if f.get(key, {}).get("ok") and "steps" in f[key]["figures"]]
    if runs:
        per_run = [stages(t) for _, t in runs]
        reference = b["seconds"] if b and b["ok"] else None
        lines += ["Where the time and memory go (Dagster step times of the warehouse run, publication wall time; "
                  "peak RSS of the process tree sampled each second while the stage ran"
                  + ("; × b = seconds / the reference SQL's" if reference else "") + "):", "",
                  "| stage | " + " | ".join(f"{n} s | peak MiB" + (" | × b" if reference else "") for n, _ in runs)
                  + " |", "| --- |" + (" --- | --- |" + (" --- |" if reference else "")) * len(runs)]
        for name in STAGE_ORDER:
            cells = []
            for run in per_run:
                seconds, peak = run.get(name, (0.0, 0.0))
                cells.append(f"{seconds:,.1f} | {peak:,.0f}" + (f" | {seconds / reference:.1f}" if reference else ""))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def render(cache: Path, notes: str = "") -> str:
    sections = [section(json.loads(p.read_text(encoding="utf-8")))
                for p in sorted(cache.glob("*/figures.json"))]
    return "\n".join([
        "# Benchmark results", "",
        "Written by `python -m bench` (`make bench`); every step runs in its own process (wall time; peak RSS "
        "from `os.wait4`). Rows/s = delivered rows of the landing / wall time. Targets: " + TARGETS + ".", "",
        notes, *sections,
    ])
