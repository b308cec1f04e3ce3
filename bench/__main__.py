"""`python -m bench --scale national --cache .bench-cache [--institutions N] [--skip pandas,...]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.report import render
from bench.run import FINDINGS, RESULTS, bench


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", default="national", choices=("demo", "province", "national"))
    parser.add_argument("--cache", default=".bench-cache", help="generated data and runs, kept between runs")
    parser.add_argument("--institutions", type=int, help="shrink the scale (e.g. 15000) for a quicker run")
    parser.add_argument("--weeks", type=int)
    parser.add_argument("--memory-limit", default="4GB", help="TUTORWATCH_MEMORY_LIMIT of every step")
    parser.add_argument("--reference-memory-limit",
                        help="memory limit of the reference SQL (b) (default: --memory-limit; at national it "
                             "failed under 4GB until 2026-12-07, when it ran in 2.6 GB: see bench/findings.md)")
    parser.add_argument("--pandas-memory-gb", type=float, default=12,
                        help="address-space cap of the pandas step (it fails with MemoryError beyond)")
    parser.add_argument("--prime-chunks", type=int, default=1,
                        help="ingest the history before landing A in this many batches (1: in the run over landing A)")
    parser.add_argument("--label", help="cache folder name (default: the scale, and -N with --institutions)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the pipeline measurement that was killed ((a) by default) where it stopped")
    parser.add_argument("--skip", default="", help="comma-separated: full, reference, pandas, incremental")
    args = parser.parse_args()
    cache = Path(args.cache)
    bench(args.scale, cache, args.institutions, args.weeks, args.memory_limit, set(filter(None, args.skip.split(","))),
          args.pandas_memory_gb, args.label, args.prime_chunks, args.reference_memory_limit, args.resume)
    RESULTS.write_text(render(cache, FINDINGS.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"[bench] figures in {RESULTS}")


if __name__ == "__main__":
    main()
