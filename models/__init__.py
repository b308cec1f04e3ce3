"""The risk-warning model: labels, features, training, calibration, backtest, scoring and the registry.

Library code without Dagster: every entry point takes a DuckDB connection and plain arguments.
"""
