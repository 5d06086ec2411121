"""Load-test figures from known timelines, and process sampling of this very process."""

from __future__ import annotations

import os
import time

from cardiowatch.loadtest._procstats import ProcessSampler
from cardiowatch.loadtest._run import LoadtestConfig, _Observed, _recovery, summarise


def test_recovery_ends_with_the_last_result_slower_than_before_the_kill() -> None:
    # 0.2 s latencies, the kill at 30 s, results stalled until 41 s, normal again after 45 s.
    arrivals = [float(t) for t in range(11, 60)]
    latencies = [0.2 if t < 30 or t > 45 else 12.0 - (t - 30) * 0.7 for t in arrivals]
    r = _recovery(_Observed(latencies, arrivals), kill_at_s=30.0, warmup_s=10.0)
    assert r["normal_max_latency_s"] == 1.0  # nothing before the kill was slower than 1 s
    last_late = max(t for t, lat in zip(arrivals, latencies, strict=True) if t >= 30 and lat > 1)
    assert r["recovery_s"] == round(last_late - 30.0, 2)
    assert r["max_latency_after_kill_s"] == 12.0


def test_summary_passes_only_with_bounded_lag_and_p99_below_one_second() -> None:
    config = LoadtestConfig(patients=10, duration_s=40.0, warmup_s=5.0)

    def run(lag_of: float, latency_s: float, lost: int = 0) -> dict[str, object]:
        timeline = [
            {"t_s": float(t), "lag_chunks": int(lag_of * t), "processes": {}} for t in range(40)
        ]
        obs = _Observed([latency_s] * 100, [float(t) for t in range(100)], vitals=400)
        return summarise(config, timeline, obs, 400, 144_000, 400, lost, 40.0, 41.0)

    steady = run(lag_of=0.0, latency_s=0.3)
    assert steady["passed"]
    assert steady["latency_s"] == {"p50": 0.3, "p95": 0.3, "p99": 0.3, "max": 0.3}
    assert steady["produced"]["msg_per_s"] == 10.0  # type: ignore[index]
    assert not run(lag_of=0.0, latency_s=1.5)["passed"]
    growing = run(lag_of=2.0, latency_s=0.3)  # 80 chunks in flight at the end: > 2 rounds
    assert not growing["lag_bounded"]
    assert not run(lag_of=0.0, latency_s=0.3, lost=1)["passed"]


def test_process_sampler_sees_this_process_work() -> None:
    sampler = ProcessSampler({"me": os.getpid(), "gone": 2**22 + 12345})
    t0 = time.process_time()
    while time.process_time() - t0 < 0.3:
        pass
    sample = sampler.sample()
    assert set(sample) == {"me"}  # a pid that does not exist is left out
    assert sample["me"]["cpu_percent"] > 0
    assert sample["me"]["rss_mb"] > 10
    assert sampler.cpu_s()["me"] >= 0.25
