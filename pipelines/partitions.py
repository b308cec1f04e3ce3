"""Partitions: ISO weeks ('2026-W10') found in the data; publication runs one partition per week."""

import dagster as dg

iso_week_partitions = dg.DynamicPartitionsDefinition(name="iso_week")
