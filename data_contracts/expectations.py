"""great-expectations suites derived from `data_contracts.rules`: one suite per feed, one expectation per rule.

The suites run on the same batch relation as the quarantine SQL (as pandas DataFrames of whole files, a
bounded number of rows at a time), on an ephemeral context with analytics off. Each expectation carries
its rule name in `meta["rule"]`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.execution_engine import PandasExecutionEngine, pandas_execution_engine  # noqa: E402
from great_expectations.expectations.expectation import (  # noqa: E402
    ColumnMapExpectation, ColumnPairMapExpectation,
)
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial  # noqa: E402
from great_expectations.expectations.metrics.map_metric_provider.column_pair_condition_partial import (  # noqa: E402
    column_pair_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.column_pair_map_metric_provider import (  # noqa: E402
    ColumnPairMapMetricProvider,
)
from great_expectations.expectations.row_conditions import Column as Col  # noqa: E402

from data_contracts.identifiers import is_valid_uscc  # noqa: E402
from data_contracts.rules import (  # noqa: E402
    Between, Compare, Conditional, Exists, IsTrue, OneOf, Parses, Required, Rule, StartsWith, UniqueInFile, Uscc,
    rules_for,
)


# GX fingerprints each pandas batch below this size by hashing every value (batch metadata that no rule reads):
# a fifth of the time of a national contract check (py-spy). Our batches are never above it, so no hash.
pandas_execution_engine.HASH_THRESHOLD = 0


class ColumnValuesValidUscc(ColumnMapMetricProvider):
    condition_metric_name = "column_values.tutorwatch_valid_uscc"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        # every row of a feed names its institution: check each distinct code once, then find the few bad ones
        # (`isin` over the ~150,000 good national codes cost as much again as checking them)
        return ~column.isin([code for code in column.unique() if not is_valid_uscc(code)])


class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """Unified social credit codes with a correct GB 32100-2015 check character."""

    map_metric = "column_values.tutorwatch_valid_uscc"


class ColumnPairValuesAStartsWithB(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.tutorwatch_a_starts_with_b"
    condition_domain_keys = ("column_A", "column_B", "ignore_row_if")

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, **kwargs):
        return pd.Series([str(a).startswith(str(b)) for a, b in zip(column_A, column_B)], index=column_A.index)


class ExpectColumnPairValuesAToStartWithB(ColumnPairMapExpectation):
    """County codes begin with their province code."""

    map_metric = "column_pair_values.tutorwatch_a_starts_with_b"
    ignore_row_if: str = "either_value_is_missing"
    success_keys = ("mostly", "ignore_row_if")


def _regex(pattern: str) -> str:
    return f"^(?:{pattern})$"


def expectation_for(rule: Rule):
    """The GX form of one rule (the same statement as `rule.violation_sql`)."""
    f, meta = rule.form, {"rule": rule.name}
    e = gx.expectations
    if isinstance(f, Parses):
        return e.ExpectColumnValuesToMatchRegex(column=f"_raw_{f.column}", regex=_regex(f.pattern), meta=meta)
    if isinstance(f, Required):
        return e.ExpectColumnValuesToNotBeNull(column=f.target, meta=meta)
    if isinstance(f, OneOf):
        return e.ExpectColumnValuesToBeInSet(column=f.column, value_set=list(f.values), meta=meta)
    if isinstance(f, Between):
        return e.ExpectColumnValuesToBeBetween(column=f.column, min_value=f.min_value, max_value=f.max_value, meta=meta)
    if isinstance(f, Compare):
        if f.op == "=":
            return e.ExpectColumnPairValuesToBeEqual(column_A=f.left, column_B=f.right,
                                                     ignore_row_if="either_value_is_missing", meta=meta)
        return e.ExpectColumnPairValuesAToBeGreaterThanB(column_A=f.right, column_B=f.left, or_equal=f.op == "<=",
                                                         ignore_row_if="either_value_is_missing", meta=meta)
    if isinstance(f, Conditional):
        when = Col(f.when).is_in(list(f.values)) if f.when_in else Col(f.when).is_not_in(list(f.values))
        cls = e.ExpectColumnValuesToBeNull if f.must_be_null else e.ExpectColumnValuesToNotBeNull
        return cls(column=f.column, row_condition=when, meta=meta)
    if isinstance(f, IsTrue):
        return e.ExpectColumnValuesToBeInSet(column=f.column, value_set=[True], meta=meta)
    if isinstance(f, StartsWith):
        return ExpectColumnPairValuesAToStartWithB(column_A=f.column, column_B=f.prefix_column, meta=meta)
    if isinstance(f, Uscc):
        return ExpectColumnValuesToBeValidUscc(column=f.column, meta=meta)
    if isinstance(f, UniqueInFile):
        return e.ExpectCompoundColumnsToBeUnique(column_list=["_file", *f.key], meta=meta)
    if isinstance(f, Exists):
        return e.ExpectColumnValuesToBeInSet(column=f.found_column, value_set=[True],
                                             row_condition=Col(f.column).is_not_null(), meta=meta)
    raise TypeError(f"no expectation for {type(f).__name__} ({rule.name})")


def build_suite(feed: str) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=f"tutorwatch_{feed}")
    for rule in rules_for(feed):
        suite.add_expectation(expectation_for(rule))
    return suite


def _names(value) -> set[str]:
    """Every string inside an expectation's kwargs (columns, row-condition columns, and some values)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*map(_names, value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*map(_names, value)) if value else set()
    return set()


def suite_columns(suite: gx.ExpectationSuite) -> set[str]:
    """The batch columns a suite may read (a superset: kwargs values that are not columns are dropped by the
    caller), plus the row identity its results report."""
    return {"_file", "_row"}.union(*(_names(e.configuration.kwargs) for e in suite.expectations))


def _widened(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as int64: GX compares a range vectorised only for int64 and float64 columns, and the
    others (DuckDB's INTEGER arrives as int32) value by value in Python, a fifth of a consumptions check."""
    widen = {c: "int64" for c, t in frame.dtypes.items() if isinstance(t, np.dtype) and t.kind in "iu"
              and t != np.int64}
    return frame.astype(widen) if widen else frame


def validate_batches(feed: str, frames: Callable[[set[str]], Iterable[pd.DataFrame]]
                     ) -> Iterator[dict[str, set[tuple[str, int]]]]:
    """Run the feed's suite on each frame `frames(columns)` yields (one GX context for all; `columns` are the
    ones the suite reads, so a frame need not carry the others); per frame and rule, the (file, row) pairs
    GX finds breaking it. Frames are parts of one batch cut at file boundaries, so per-file rules hold."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    source = context.data_sources.add_pandas(f"{feed}_batch")
    batch_definition = source.add_dataframe_asset(feed).add_batch_definition_whole_dataframe("delivered")
    suite = context.suites.add(build_suite(feed))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{feed}_contract", data=batch_definition, suite=suite)
    )
    for frame in frames(suite_columns(suite)):
        result = validation.run(
            batch_parameters={"dataframe": _widened(frame).reset_index(drop=True)},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_file", "_row"]},
        )
        flagged: dict[str, set[tuple[str, int]]] = {}
        for r in result.results:
            rule = r.expectation_config.meta["rule"]
            infos = [r.exception_info, *(v for v in (r.exception_info or {}).values() if isinstance(v, dict))]
            if failed := [i for i in infos if i.get("raised_exception")]:
                raise RuntimeError(f"GX could not evaluate {rule}: {failed[0].get('exception_message')}")
            rows = r.result.get("unexpected_index_list") or []
            flagged[rule] = {(x["_file"], int(x["_row"])) for x in rows}
        yield flagged


def validate_batch(feed: str, frame: pd.DataFrame) -> dict[str, set[tuple[str, int]]]:
    """Run the feed's suite on a batch frame; per rule, the (file, row) pairs GX finds breaking it."""
    return next(validate_batches(feed, lambda columns: [frame]))
