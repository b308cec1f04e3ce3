"""`tutorwatch` command line: generate demo data, run the pipeline, serve the dashboard, backtest."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tutorwatch import settings


def _cmd_generate(args: argparse.Namespace) -> int:
    from tutorwatch.generator import generate

    summary = generate(scale=args.scale, weeks=args.weeks, seed=args.seed, out=Path(args.out), start=args.start)
    print(summary)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from tutorwatch.runner import RunRefused, run

    try:
        if args.retrain:
            os.environ[settings.ENV_RETRAIN] = "1"
        run(landing=Path(args.landing), out=Path(args.out),
            warehouse=Path(args.warehouse) if args.warehouse else None, weeks=args.weeks,
            all_reports=args.all_reports, jobs=args.jobs, resume=args.resume)
    except (RunRefused, settings.PiiKeyMissing) as exc:
        print(f"tutorwatch run: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboards.app import serve

    serve(warehouse=Path(args.warehouse), out=Path(args.out), host=args.host, port=args.port)
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from models.backtest import main as backtest_main

    return backtest_main(warehouse=Path(args.warehouse), truth=Path(args.truth), out=Path(args.out))


def _cmd_rule_backtest(args: argparse.Namespace) -> int:
    from pipelines.publish.backtest_rules import rule_backtest
    from pipelines.warehouse import connect
    from tutorwatch.runner import publishable_weeks

    with connect(Path(args.warehouse), read_only=True) as con:
        weeks = publishable_weeks(con, None)
        print(f"weeks evaluated: the {len(weeks)} publishable weeks {weeks[0]} … {weeks[-1]}" if weeks else
              "no publishable weeks: every week evaluated")
        print(rule_backtest(con, Path(args.truth), weeks or None))
    return 0


def _cmd_public_lists(args: argparse.Namespace) -> int:
    from dashboards.lists import publish_public_lists

    written = publish_public_lists(os.environ.get(settings.ENV_CASES_URL), Path(args.warehouse), Path(args.out))
    for name, info in written.items():
        print(f"{name}: {info}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tutorwatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic landing directory (and truth/ beside it)")
    gen.add_argument("--scale", choices=("demo", "province", "national"), default="demo")
    gen.add_argument("--weeks", type=int, default=None, help="number of ISO weeks (default: per scale)")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--start", default=None, help="Monday of the first week, YYYY-MM-DD (default: per scale)")
    gen.add_argument("--out", required=True, help="folder that receives landing/ and truth/")
    gen.set_defaults(func=_cmd_generate)

    run = sub.add_parser("run", help="ingest a landing directory and publish warning lists and reports")
    run.add_argument("--landing", required=True)
    run.add_argument("--out", required=True)
    run.add_argument("--warehouse", default=None, help="DuckDB file (default: OUT/warehouse.duckdb)")
    run.add_argument("--weeks", default=None, help="publish only these weeks, e.g. 2026-W01:2026-W20")
    run.add_argument("--all-reports", action="store_true",
                     help="write the HTML/PDF reports for every published week (default: the newest week only)")
    run.add_argument("--jobs", type=int, default=None,
                     help=f"publication worker processes (default: {settings.ENV_JOBS} or 2)")
    run.add_argument("--retrain", action="store_true",
                     help="retrain the risk model now (default: when 4 more weeks of labels have matured)")
    run.add_argument("--resume", action="store_true",
                     help="continue the last run in OUT that was killed or failed from its first unfinished step")
    run.set_defaults(func=_cmd_run)

    dash = sub.add_parser("dashboard", help="serve the dashboard (development server)")
    dash.add_argument("--warehouse", default=str(settings.DEFAULT_OUT / "warehouse.duckdb"))
    dash.add_argument("--out", default=str(settings.DEFAULT_OUT))
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--port", type=int, default=8050)
    dash.set_defaults(func=_cmd_dashboard)

    bt = sub.add_parser("backtest", help="prequential backtest of the model against the generator's truth")
    bt.add_argument("--warehouse", required=True)
    bt.add_argument("--truth", required=True)
    bt.add_argument("--out", required=True)
    bt.set_defaults(func=_cmd_backtest)

    rbt = sub.add_parser("rule-backtest", help="how the transparent rule score alone fares against the truth")
    rbt.add_argument("--warehouse", required=True)
    rbt.add_argument("--truth", required=True)
    rbt.set_defaults(func=_cmd_rule_backtest)

    pub = sub.add_parser("public-lists", help="publish the black and white lists (no personal data) from cases")
    pub.add_argument("--warehouse", default=str(settings.DEFAULT_OUT / "warehouse.duckdb"))
    pub.add_argument("--out", default=str(settings.DEFAULT_OUT))
    pub.set_defaults(func=_cmd_public_lists)
    return parser


def main(argv: list[str] | None = None) -> int:
    settings.load_dotenv()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
