"""Resources: the DuckDB warehouse and the folders the pipeline reads and writes, from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from tutorwatch import settings


def duckdb_config() -> dict:
    """Connection settings: reporting time zone, no extension downloads, optional memory cap."""
    config = {
        "TimeZone": "Asia/Shanghai",
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if limit := settings.memory_limit():
        config["memory_limit"] = limit
    return config


class FoldersResource(dg.ConfigurableResource):
    """Where the landing deliveries are read from and where lists and reports are written."""

    landing_dir: str
    out_dir: str

    @property
    def landing(self) -> Path:
        return Path(self.landing_dir)

    @property
    def out(self) -> Path:
        return Path(self.out_dir)


def default_resources() -> dict:
    return {
        "duckdb": DuckDBResource(database=dg.EnvVar(settings.ENV_WAREHOUSE), connection_config=duckdb_config()),
        "folders": FoldersResource(landing_dir=dg.EnvVar(settings.ENV_LANDING), out_dir=dg.EnvVar(settings.ENV_OUT)),
    }


def set_default_environment(landing: Path, out: Path, warehouse: Path | None = None) -> None:
    """Point the EnvVar-backed resources at concrete folders (used by the CLI and the tests)."""
    out.mkdir(parents=True, exist_ok=True)
    os.environ[settings.ENV_LANDING] = str(landing.resolve())
    os.environ[settings.ENV_OUT] = str(out.resolve())
    os.environ[settings.ENV_WAREHOUSE] = str((warehouse or out / "warehouse.duckdb").resolve())
