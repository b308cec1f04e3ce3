"""Resources: the DuckDB warehouse and the folders the pipeline reads and writes, from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.warehouse import connect
from tutorwatch import settings


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file; every connection is opened by `pipelines.warehouse.connect` (time zone, limits)."""

    database: str

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.database, read_only=read_only)
        try:
            yield con
        finally:
            con.close()


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
        "duckdb": WarehouseResource(database=dg.EnvVar(settings.ENV_WAREHOUSE)),
        "folders": FoldersResource(landing_dir=dg.EnvVar(settings.ENV_LANDING), out_dir=dg.EnvVar(settings.ENV_OUT)),
    }


def set_default_environment(landing: Path, out: Path, warehouse: Path | None = None) -> Path:
    """Point the EnvVar-backed resources at concrete folders (used by the CLI and the tests)."""
    out.mkdir(parents=True, exist_ok=True)
    warehouse = (warehouse or out / "warehouse.duckdb").resolve()
    os.environ[settings.ENV_LANDING] = str(landing.resolve())
    os.environ[settings.ENV_OUT] = str(out.resolve())
    os.environ[settings.ENV_WAREHOUSE] = str(warehouse)
    return warehouse
