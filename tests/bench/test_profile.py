"""The per-step memory profile attributes a peak to the interval in which it happened."""

import time

from bench.profile import RssSampler


def test_sampler_sees_an_allocation_only_while_it_is_held():
    with RssSampler(interval=0.05) as rss:
        time.sleep(0.3)
        before_end = time.time()
        held = bytearray(300 * 2**20)  # 300 MB, touched so that it is resident
        held[::4096] = b"x" * len(held[::4096])
        start = time.time()
        time.sleep(0.4)
        end = time.time()
        del held
        time.sleep(0.3)
    assert rss.peak_mb(start, end) - rss.peak_mb(end=before_end) > 250
    assert rss.at_mb(before_end) < rss.peak_mb(start, end) - 250
