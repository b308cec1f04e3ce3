"""Partitions: ISO weeks ('2026-W10') found in the data, and provinces for publication."""

import dagster as dg

from data_contracts.regions import PROVINCE_CODES

iso_week_partitions = dg.DynamicPartitionsDefinition(name="iso_week")
province_partitions = dg.StaticPartitionsDefinition(list(PROVINCE_CODES))
week_province_partitions = dg.MultiPartitionsDefinition({"week": iso_week_partitions, "province": province_partitions})
