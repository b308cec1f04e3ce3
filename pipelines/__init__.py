"""Dagster assets, checks, jobs and schedules of tutorwatch."""
