"""Who may see what: every query of the dashboard goes through a `Scope`.

The predicate is built from the logged-in user's own attributes and bound as parameters; user input
never becomes SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

ROLES = ("ministry", "province", "county")
ROLE_ZH = {"ministry": "教育部分析员", "province": "省级监管", "county": "县级监管"}


@dataclass(frozen=True)
class Scope:
    role: str
    province_code: str | None = None
    county_code: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")
        if self.role == "province" and not self.province_code:
            raise ValueError("a province official needs a province_code")
        if self.role == "county" and not (self.county_code and self.province_code
                                          and self.county_code.startswith(self.province_code)):
            raise ValueError("a county official needs a county_code inside its province_code")

    @property
    def can_issue(self) -> bool:
        """Only county officials issue rectification notices (they own the institutions on the ground)."""
        return self.role == "county"

    def sql(self, alias: str = "") -> tuple[str, list]:
        """`(predicate, params)` for DuckDB: AND it into the WHERE of any table with the region columns."""
        prefix = f"{alias}." if alias else ""
        if self.role == "county":
            return f"{prefix}county_code = ?", [self.county_code]
        if self.role == "province":
            return f"{prefix}province_code = ?", [self.province_code]
        return "true", []

    def clause(self, table: sa.Table):
        """The same predicate for a SQLAlchemy table (cases); None means everything."""
        if self.role == "county":
            return table.c.county_code == self.county_code
        if self.role == "province":
            return table.c.province_code == self.province_code
        return None

    def allows(self, province_code: str | None, county_code: str | None) -> bool:
        if self.role == "county":
            return county_code == self.county_code
        if self.role == "province":
            return province_code == self.province_code
        return True
