"""Dagster definitions of the indicators area."""
