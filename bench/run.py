"""The benchmark run: cached generation and conversion, the three timed implementations, the incremental
weekly run, and `bench/results.md` rendered from every scale's figures kept in the cache."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from data_contracts.feeds import FILE_NAME_PATTERN

ROOT = Path(__file__).resolve().parents[1]  # `python -m bench.steps` runs from the repository root
RESULTS = ROOT / "bench" / "results.md"
FINDINGS = ROOT / "bench" / "findings.md"  # the hand-written analysis that heads results.md
BENCH_PII_KEY = "bench-only-pseudonymisation-key"  # synthetic data: any key of 16+ characters will do


@dataclass
class Timing:
    """One step run in its own process: wall seconds, peak resident memory, and the step's own figures."""

    name: str
    seconds: float
    peak_mb: float
    ok: bool
    figures: dict = field(default_factory=dict)


def snapshot(target: Path) -> str:
    """The committed code (HEAD) unpacked into `target`: the steps import it from there, so edits in progress
    in the working tree cannot break or change a long run. Returns the commit."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=True)
    archive.wait()
    return commit


def timed(name: str, step: str, folder: Path, env: dict[str, str], source: Path = ROOT, address_space: int = 0,
          **options) -> Timing:
    """Run `python -m bench.steps <step>` from `source` and measure it (os.wait4: the child's own ru_maxrss).

    `address_space` (bytes) caps the child's virtual memory, so a step that does not fit fails with a
    MemoryError instead of waking the OOM killer on a shared machine."""
    figures = folder / f"{name}.json"
    argv = [sys.executable, "-m", "bench.steps", step, "--json", str(figures)]
    for option, value in options.items():
        if value is True:
            argv.append(f"--{option}")
        elif value is not None:
            argv += [f"--{option}", str(value)]
    print(f"[bench] {name}: {' '.join(argv[3:])}", flush=True)
    started = time.monotonic()
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    child = subprocess.Popen(argv, env={**os.environ, **env}, cwd=source, preexec_fn=cap if address_space else None)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    ok = os.waitstatus_to_exitcode(status) == 0
    result = Timing(name, seconds, usage.ru_maxrss / 1024, ok,
                    json.loads(figures.read_text(encoding="utf-8")) if ok and figures.exists() else {})
    print(f"[bench] {name}: {'ok' if ok else 'FAILED'} in {seconds:.1f} s, peak {result.peak_mb:.0f} MB", flush=True)
    return result


def record(figures: dict, timing: Timing, commits: list[str]) -> None:
    """Put a measurement into the figures, with the commits of its parts. A failed one does not replace an
    earlier success of the same step (a national rerun that ran out of disk after 33 min would have wiped a
    75-minute measurement): it is kept under `failed` and reported beside the earlier figures."""
    failed = figures.setdefault("failed", {})
    if timing.ok or not figures.get(timing.name, {}).get("ok"):
        figures[timing.name] = asdict(timing)
        figures.setdefault("commits", {})[timing.name] = commits
        failed.pop(timing.name, None)
    else:
        failed[timing.name] = asdict(timing) | {"commits": commits}


def _deliveries(landing: Path) -> dict[Path, str]:
    """Every delivery file (and manifest) of the landing with the ISO week of its delivery date."""
    pattern = re.compile(FILE_NAME_PATTERN)
    weeks = {}
    for path in landing.glob("*/*"):
        if match := pattern.match(path.name.removesuffix(".manifest.json")):
            day = match["date"]
            weeks[path] = date(int(day[:4]), int(day[4:6]), int(day[6:])).strftime("%G-W%V")
    return weeks


def link_landing(landing: Path, tree: Path, before_week: str | None = None) -> int:
    """A symlink tree of the delivery files delivered before `before_week` (all of them with None)."""
    shutil.rmtree(tree, ignore_errors=True)
    kept = [p for p, week in _deliveries(landing).items() if before_week is None or week < before_week]
    for path in kept:
        link = tree / path.parent.name / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve())
    return len(kept)


def split_landing(landing: Path, before: Path, after: Path) -> str:
    """Symlink trees: `before` = every delivery file (and manifest) of the ISO weeks before the newest
    delivery week, `after` = all of them. Returns the newest delivery week."""
    newest = max(_deliveries(landing).values())
    link_landing(landing, before, newest)
    link_landing(landing, after)
    return newest


def prime_weeks(landing: Path, chunks: int) -> list[str]:
    """Delivery weeks that cut the weeks before the newest into `chunks` cumulative ingestion batches."""
    weeks = sorted(set(_deliveries(landing).values()))[:-1]
    return [weeks[len(weeks) * i // chunks] for i in range(1, chunks)]


def bench(scale: str, cache: Path, institutions: int | None, weeks: int | None, memory_limit: str,
          skip: set[str], pandas_memory_gb: float = 12, label: str | None = None, prime_chunks: int = 1,
          reference_memory_limit: str | None = None, resume: bool = False) -> dict:
    """Every figure of one scale (also saved as `cache/<label>/figures.json`).

    With `resume`, the pipeline measurement that was killed ((a), the run over landing A or the incremental
    run: a national run outlasts a working session) continues where it stopped: its time and peak are those
    of every part (`_pipeline` in bench/steps.py), and the commits of the parts are kept in `commits`."""
    label = label or (scale if institutions is None else f"{scale}-{institutions}")
    folder = (cache / label).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    env = {"TUTORWATCH_MEMORY_LIMIT": memory_limit, "GX_ANALYTICS_ENABLED": "false",
           "TUTORWATCH_PII_KEY": os.environ.get("TUTORWATCH_PII_KEY", BENCH_PII_KEY)}
    figures: dict = {"label": label, "scale": scale, "memory_limit": memory_limit, "cpus": os.cpu_count(),
                     "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    saved = folder / "figures.json"
    if saved.exists():
        figures = json.loads(saved.read_text(encoding="utf-8")) | figures

    source = folder / "src"
    figures["commit"] = snapshot(source)

    def measure(name: str, step: str, address_space: int = 0, memory_limit: str | None = None, **options) -> Timing:
        limit = {"TUTORWATCH_MEMORY_LIMIT": memory_limit} if memory_limit else {}
        return keep(timed(name, step, folder, env | limit, source, address_space, **options))

    def keep(timing: Timing, commits: list[str] | None = None) -> Timing:
        record(figures, timing, commits or [figures["commit"]])
        save()
        return timing

    def save() -> None:
        saved.write_text(json.dumps(figures, indent=1, ensure_ascii=False), encoding="utf-8")

    interrupted = figures.get("interrupted") if resume else None  # the pipeline measurement left unfinished

    def pipeline(name: str, landing: Path, out: Path) -> None:
        """A pipeline measurement (a run of `tutorwatch run`); the interrupted one continues (`--resume`) instead
        of starting again, and then counts the time and sampled peak of all its parts."""
        again = name == interrupted
        figures["interrupted"] = name
        attempts = figures.setdefault("attempts", {})  # the commits of an unfinished run's parts
        attempts[name] = (attempts.get(name, []) if again else []) + [figures["commit"]]
        save()  # before the run: a killed run leaves no other trace in the figures
        timing = timed(name, "pipeline", folder, env, source, landing=landing, out=out, resume=again or None)
        if timing.ok and len(timing.figures["parts"]) > 1:
            timing.seconds = timing.figures["elapsed_s"]
            timing.peak_mb = max(timing.peak_mb, timing.figures["killed_peak_mb"])
        if timing.ok:  # a failed one can be resumed too, once its cause is fixed
            del figures["interrupted"]
        keep(timing, attempts.pop(name) if timing.ok else attempts[name])

    landing = folder / "landing"
    if not landing.is_dir():
        measure("generate", "generate", scale=scale, out=folder, institutions=institutions, weeks=weeks)
    figures["newest_week"] = split_landing(landing, folder / "landing_a", folder / "landing_b")
    parquet = folder / "parquet"
    if not (parquet / "evaluations.parquet").exists():
        measure("convert", "convert", landing=landing, parquet=parquet)

    if "full" not in skip:
        if interrupted != "pipeline":
            shutil.rmtree(folder / "run_full", ignore_errors=True)
        pipeline("pipeline", folder / "landing_b", folder / "run_full")
    if "indicators" not in skip:
        measure("indicators", "indicators", parquet=parquet, out=folder / "run_indicators", week=figures["newest_week"])
    if "reference" not in skip:
        # one statement cannot be cut into chunks: it may get more memory than the pipeline (recorded, reported)
        figures["reference_memory_limit"] = reference_memory_limit or memory_limit
        measure("reference", "reference", memory_limit=figures["reference_memory_limit"], parquet=parquet,
                result=folder / "reference.parquet")
    if "pandas" not in skip:
        measure("pandas", "pandas", parquet=parquet, result=folder / "pandas.parquet",
                address_space=int(pandas_memory_gb * 2**30))
    if "incremental" not in skip:
        if interrupted not in ("pipeline_a", "incremental"):
            shutil.rmtree(folder / "run_incremental", ignore_errors=True)
            # the warehouse a weekly deployment would hold: history ingested in batches (one batch of every
            # delivery does not fit in memory at national scale), then the full run over landing A
            for i, week in enumerate(prime_weeks(landing, prime_chunks), 1):
                link_landing(landing, folder / "landing_prime", week)
                measure(f"prime_{i}", "ingest", landing=folder / "landing_prime", out=folder / "run_incremental")
        if interrupted != "incremental":
            pipeline("pipeline_a", folder / "landing_a", folder / "run_incremental")
            # the primed warehouse, kept: the weekly run can be measured again over a copy of it
            # (`python -m bench.steps pipeline --landing landing_b --out COPY`) without another run over landing A
            shutil.rmtree(folder / "primed_a", ignore_errors=True)
            shutil.copytree(folder / "run_incremental", folder / "primed_a")
        pipeline("incremental", folder / "landing_b", folder / "run_incremental")
    return figures
