"""Where each institution stands in its story on a given day: the multipliers every feed draws from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tutorwatch.generator.institutions import NONE


@dataclass
class StoryAt:
    """Story state for pairs (institution, day); all arrays have the pairs' shape."""

    story: np.ndarray
    strength: np.ndarray
    progress: np.ndarray  # 0 at story start, 1 at closure
    phase: np.ndarray     # inside [story start, closure)
    stopped: np.ndarray   # after the institution stopped teaching (discount_abscond)
    promo: np.ndarray
    bad_month: np.ndarray
    complaint_burst: np.ndarray

    def is_(self, story: str) -> np.ndarray:
        return self.phase & (self.story == story)


class Context:
    def __init__(self, inst: pd.DataFrame):
        self.col = {c: inst[c].to_numpy() for c in inst.columns}
        close = self.col["close_day"]
        start = self.col["story_start"]
        self.phase_end = np.where(close != NONE, close, np.where(start != NONE, start + 84, NONE))

    def at(self, i: np.ndarray, day: np.ndarray) -> StoryAt:
        c = self.col
        start, end = c["story_start"][i], self.phase_end[i]
        span = np.maximum(end - start, 1)
        in_phase = (start != NONE) & (day >= start) & (day < end)

        def episode(name: str, days: int) -> np.ndarray:
            ep = c[f"ep_{name}"][i]
            return (ep != NONE) & (day >= ep) & (day < ep + days)

        return StoryAt(
            story=c["story"][i], strength=c["strength"][i],
            progress=np.where(in_phase, np.clip((day - start) / span, 0, 1), 0.0), phase=in_phase,
            stopped=(c["story"][i] == "discount_abscond") & (day >= c["stop_teach_day"][i]),
            promo=episode("promo", 21), bad_month=episode("bad_month", 28), complaint_burst=episode("complaints", 14),
        )
