"""The Dagster asset materialises the mart on a real DuckDB file, with the code location's resource."""

import dagster as dg

from pipelines.defs.indicators.assets import FEED_ASSETS, institution_week_indicators
from pipelines.resources import WarehouseResource
from pipelines.warehouse import connect


def test_asset_materialises_the_mart(handmade_warehouse, tmp_path):
    path = tmp_path / "copy.duckdb"
    path.write_bytes(handmade_warehouse.read_bytes())
    with connect(path) as con:
        con.execute("DROP TABLE marts.institution_week_indicators")
    result = dg.materialize([institution_week_indicators], resources={"duckdb": WarehouseResource(database=str(path))})
    assert result.success
    metadata = result.asset_materializations_for_node("institution_week_indicators")[0].metadata
    # 14 weeks for M S R K T F B Z, X in W01..W11, N in W11..W14
    assert metadata["rows"].value == 8 * 14 + 11 + 4
    assert metadata["weeks"].value == 14
    assert metadata["institutions"].value == 10


def test_asset_depends_on_the_feeds_group_and_kind():
    spec = institution_week_indicators
    key = dg.AssetKey("institution_week_indicators")
    assert {d.asset_key for d in spec.specs_by_key[key].deps} == {dg.AssetKey(n) for n in FEED_ASSETS}
    assert spec.group_names_by_key[key] == "indicators"
    assert "duckdb" in spec.specs_by_key[key].kinds
