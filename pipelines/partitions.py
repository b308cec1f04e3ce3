"""Partitions: ISO weeks ('2026-W10') found in the data, and week × province for per-province publication.

Publication runs one (week, province) partition per run, so provinces publish in parallel; the national
parts (all.csv, the national report) are week partitions that depend on every province of their week.
"""

import warnings

import dagster as dg

from data_contracts.regions import PROVINCE_CODES

iso_week_partitions = dg.DynamicPartitionsDefinition(name="iso_week")
province_partitions = dg.StaticPartitionsDefinition(list(PROVINCE_CODES))
week_province_partitions = dg.MultiPartitionsDefinition({"week": iso_week_partitions, "province": province_partitions})
with warnings.catch_warnings():  # "beta" since 1.5; it would open every `tutorwatch run` and test
    warnings.simplefilter("ignore", dg.BetaWarning)
    provinces_of_the_week = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="week")


def week_province_key(week: str, province: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"week": week, "province": province})
