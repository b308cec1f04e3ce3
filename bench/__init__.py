"""`make bench`: the national-scale benchmark (`python -m bench --scale national --cache .bench-cache`).

Times, each in its own subprocess (wall time, rows/s, peak RSS): (a) the full pipeline from landing files to
published lists, (b) one hand-written DuckDB SQL computing the core indicators over the same Parquet, (c) the
same in pandas; then the incremental weekly run (landing A = all but the newest week, then B = A + that
week, into the same warehouse). Writes `bench/results.md`.
"""
