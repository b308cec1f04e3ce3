"""Dagster definitions of the risk model: training, backtest report, weekly scores and their drift check."""
