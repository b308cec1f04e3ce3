"""Dagster definitions of publication: the warnings mart, the weekly lists and reports, their schedule."""
