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


def test_an_interval_shorter_than_the_sampling_one_reports_what_was_held_when_it_began():
    with RssSampler(interval=60) as rss:  # one sample when it starts, no other for a minute
        time.sleep(0.05)
        start = time.time()
        end = start + 0.01
    assert not [t for t, _ in rss.samples if start <= t <= end]
    assert rss.peak_mb(start, end) == rss.at_mb(start) > 0
    taken = rss.sample()
    assert rss.peak_mb(start, taken) == max(mb for _, mb in rss.samples)


def test_samples_logged_to_a_file_are_there_for_the_sampler_that_resumes(tmp_path):
    log = tmp_path / "rss.tsv"
    with RssSampler(interval=60, log=log) as first:
        first.sample()
    with RssSampler(interval=60, log=log) as resumed:
        pass
    assert len(first.samples) == 2
    assert resumed.samples[:2] == first.samples
    assert len(resumed.samples) == 3
    assert resumed.peak_mb(end=first.samples[-1][0]) == max(mb for _, mb in first.samples)
