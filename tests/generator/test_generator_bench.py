"""Full demo scale within its time budget (run by `make bench`).

CPU time, not wall time: the machine is shared, and waiting for a core is not the generator's cost.
"""

from __future__ import annotations

import time

import pytest

from tutorwatch.generator import generate


@pytest.mark.slow
def test_demo_scale_in_twenty_seconds(tmp_path):
    began = time.process_time()
    summary = generate("demo", seed=7, out=tmp_path)
    elapsed = time.process_time() - began
    print(summary, f"\n{elapsed:.1f} s CPU")
    assert "2,000 institutions, 40 weeks" in summary
    assert elapsed < 20
