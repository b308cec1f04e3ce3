"""Resident memory sampled once a second over this process and its descendants (publication workers), so a
run's peak can be attributed to the Dagster step that was running at the time (per-stage profile)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _tree_rss_mb(root: int) -> float:
    """RSS of `root` and every descendant (one scan of /proc)."""
    parents, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * PAGE_KB / 1024
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0.0)
        stack += [child for child, parent in parents.items() if parent == pid]
    return total


class RssSampler:
    """`with RssSampler() as s:` ... then `s.peak_mb(start, end)` for any wall-clock interval (time.time()).

    With `log`, every sample is also appended to that file, and the samples already in it are loaded: the
    samples of a run that was killed survive for the run that resumes it."""

    def __init__(self, interval: float = 1.0, log: Path | None = None):
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._log = None
        if log is not None:
            if log.exists():
                self.samples = [(float(t), float(mb)) for t, mb in
                                (line.split("\t") for line in log.read_text().splitlines() if line.count("\t") == 1)]
            self._log = log.open("a", buffering=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> float:
        """Take a sample now; call it at the edges of a phase shorter than the interval, or it has none."""
        moment, mb = time.time(), _tree_rss_mb(os.getpid())
        self.samples.append((moment, mb))
        if self._log:
            self._log.write(f"{moment}\t{mb}\n")
        return moment

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self._log:
            self._log.close()

    def at_mb(self, moment: float) -> float:
        """The last sample taken at or before `moment` (what the process held when a step started)."""
        return max(((t, mb) for t, mb in self.samples if t <= moment), default=(0.0, 0.0))[1]

    def peak_mb(self, start: float = 0.0, end: float = float("inf")) -> float:
        """The largest sample inside the interval; for an interval shorter than the sampling one that holds
        no sample, what the process held when it started."""
        return max((mb for t, mb in self.samples if start <= t <= end), default=self.at_mb(start))
