"""Time: the simulated days, ISO weeks, deliveries, school seasons and holidays.

Times are plain integers so everything vectorises: days since 1970-01-01 and seconds since
1970-01-01T00:00 in Shanghai local time (the files carry the +08:00 offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

EPOCH = date(1970, 1, 1)
DAY = 86_400
BURN_IN_WEEKS = 10  # simulated before the first delivered week so the country is not empty on day one
SPRING_FESTIVALS = tuple(
    date.fromisoformat(d) for d in ("2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2028-01-26", "2029-02-13")
)


def epoch_day(d: date) -> int:
    return (d - EPOCH).days


def iso_date(day: int) -> date:
    return EPOCH + timedelta(days=int(day))


@dataclass(frozen=True)
class Calendar:
    start: date  # Monday of the first delivered week
    weeks: int

    @property
    def first_day(self) -> int:
        return epoch_day(self.start)

    @property
    def end_day(self) -> int:
        """First day after the last delivered week."""
        return self.first_day + 7 * self.weeks

    @property
    def sim_first_day(self) -> int:
        return self.first_day - 7 * BURN_IN_WEEKS

    @property
    def sim_weeks(self) -> int:
        return BURN_IN_WEEKS + self.weeks

    def week_of_day(self, day: np.ndarray) -> np.ndarray:
        """Delivered-week index of epoch days (negative during the burn-in)."""
        return np.floor_divide(np.asarray(day) - self.first_day, 7)

    def week_of_sec(self, sec: np.ndarray) -> np.ndarray:
        return self.week_of_day(np.floor_divide(sec, DAY))

    def sim_mondays(self) -> np.ndarray:
        return self.sim_first_day + 7 * np.arange(self.sim_weeks)

    def sales_season(self, days: np.ndarray) -> np.ndarray:
        """How busy selling is on each day: summer and term sign-ups high, Spring Festival and Golden Week low."""
        days = np.asarray(days)
        dates = np.array(days, dtype="datetime64[D]")
        month = dates.astype("datetime64[M]").astype(int) % 12 + 1
        mday = (dates - dates.astype("datetime64[M]")).astype(int) + 1
        by_month = np.array([0.0, 0.9, 1.2, 1.1, 1.0, 1.0, 1.3, 1.8, 1.3, 1.3, 0.9, 0.9, 0.8])
        f = by_month[month]
        f = np.where((month == 6) & (mday >= 15), 1.7, f)          # summer programmes sold late June
        f = np.where((month == 8) & (mday >= 20), 1.5, f)          # autumn term sign-ups
        f = np.where((month == 10) & (mday <= 7), 0.55, f)         # Golden Week
        f = np.where((month == 1) & (mday <= 3), 0.6, f)           # New Year
        return np.where(self.festival_distance(days) <= 10, 0.3, f)

    def festival_distance(self, days: np.ndarray) -> np.ndarray:
        sf = np.array([epoch_day(d) for d in SPRING_FESTIVALS])
        return np.abs(np.asarray(days)[..., None] - sf).min(axis=-1)

    def is_summer(self, days: np.ndarray) -> np.ndarray:
        """Orders paid from mid-June to early August are intensive summer courses."""
        dates = np.array(days, dtype="datetime64[D]")
        doy = (dates - dates.astype("datetime64[Y]")).astype(int)
        return (doy >= 160) & (doy <= 215)

    def teaching_mondays(self, horizon_weeks: int) -> np.ndarray:
        """Mondays of weeks with classes (the Spring Festival weeks have none), beyond the window for long courses."""
        mondays = self.sim_first_day + 7 * np.arange(self.sim_weeks + horizon_weeks)
        return mondays[self.festival_distance(mondays + 3) > 6]

    def platform_delivery_days(self, rng: np.random.Generator) -> np.ndarray:
        """The platform delivers each week on the Monday or Tuesday after it."""
        return self.first_day + 7 * (np.arange(self.weeks) + 1) + rng.integers(0, 2, self.weeks)

    def quarter_interest_days(self) -> np.ndarray:
        """Banks credit interest on the 21st of March, June, September and December."""
        out = []
        for year in range(self.start.year, iso_date(self.end_day).year + 1):
            for month in (3, 6, 9, 12):
                d = epoch_day(date(year, month, 21))
                if self.first_day <= d < self.end_day:
                    out.append(d)
        return np.array(out, dtype=np.int64)
