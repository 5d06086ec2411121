"""A load test against the running stack or an embedded one, and the capacity search."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cardiowatch.loadtest._run import LoadtestConfig, run_load
from cardiowatch.services import EmbeddedServices, ensure_topics
from cardiowatch.settings import Settings
from cardiowatch.workers import WorkerProcess, start_worker


def run_loadtest(
    settings: Settings,
    config: LoadtestConfig,
    *,
    log_dir: Path | None = None,
    on_sample: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Start what is missing (broker, Redis, ``config.workers`` workers), run, stop it all.

    With ``CARDIOWATCH_KAFKA_URL`` and ``CARDIOWATCH_REDIS_URL`` set, the load goes to that
    stack (its topics and consumer group); otherwise an embedded broker and Redis are started
    for this run alone, with a fresh consumer group.
    """
    if config.kill_worker_at_s is not None and config.workers < 2:
        raise ValueError("--kill-worker-at needs at least two workers started by the load test")
    with tempfile.TemporaryDirectory(prefix="cw-loadtest-") as tmp:
        logs = log_dir or Path(tmp)
        embedded = not (settings.kafka_url and settings.redis_url)
        with EmbeddedServices(settings, logs) as svc:
            run_settings = svc.settings
            if embedded:
                run_settings = run_settings.replace(app_id=f"cw-load-{uuid.uuid4().hex[:8]}")
            run_settings = run_settings.replace(worker_data_dir=str(Path(tmp) / "worker"))
            ensure_topics(
                run_settings.kafka_url, run_settings.chunk_topics, run_settings.partitions
            )
            workers: list[WorkerProcess] = []
            try:
                for i in range(config.workers):
                    workers.append(start_worker(run_settings, logs, name=f"worker-{i}"))
                group_ready_s = (
                    wait_for_group(workers, run_settings.partitions)
                    if config.wait_for_group
                    else None
                )
                pids = {f"worker-{i}": w.proc.pid for i, w in enumerate(workers)}
                pids |= {m.name: m.proc.pid for m in svc.processes}
                pids["loadtest"] = os.getpid()
                started = time.time()
                result = asyncio.run(
                    run_load(run_settings, config, workers, process_pids=pids, on_sample=on_sample)
                )
            finally:
                for w in workers:
                    w.stop()
        result["group_ready_s"] = group_ready_s
        result["stack"] = "embedded" if embedded else "running"
        result["broker_compat"] = "tansu" if run_settings.tansu_compat else "kafka"
        result["started_unix_s"] = round(started, 1)
        result["cpu_count"] = os.cpu_count()
        return result


def _gauge(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")
    )


def wait_for_group(
    workers: list[WorkerProcess], partitions: int, *, timeout_s: float = 90.0
) -> float | None:
    """Wait until every worker holds partitions, together all, with no rebalance (for 2 s).

    The load then starts on a settled consumer group, so that the only rebalance during the
    run is the one a test causes. Returns the seconds waited (``None``: no workers to wait for).
    """
    if not workers:
        return None
    t0 = time.monotonic()
    settled_since = None
    while time.monotonic() - t0 < timeout_s:
        texts = [w.metrics() for w in workers]
        held = sum(_gauge(t, "cardiowatch_partitions_assigned") for t in texts)
        started = sum(_gauge(t, "cardiowatch_rebalances_total") for t in texts)
        ended = sum(_gauge(t, "cardiowatch_rebalance_duration_seconds_count") for t in texts)
        if (
            held == partitions
            and started == ended
            and all(_gauge(t, "cardiowatch_rebalances_total") > 0 for t in texts)
        ):
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since >= 2.0:
                return round(time.monotonic() - t0, 1)
        else:
            settled_since = None
        time.sleep(0.5)
    raise RuntimeError(f"the consumer group did not settle within {timeout_s} s")


def find_capacity(
    settings: Settings,
    config: LoadtestConfig,
    *,
    start: int,
    log: Callable[[str], None],
    precision: float = 0.1,
    max_patients: int = 10_000,
) -> dict[str, Any]:
    """The largest N with bounded lag and p99 < 1 s: doubling from ``start``, then bisection.

    Every trial is a fresh :func:`run_loadtest` of ``config`` with ``patients = N``.
    """
    trials: list[dict[str, Any]] = []

    def trial(n: int) -> bool:
        result = run_loadtest(settings, replace(config, patients=n))
        latency = result["latency_s"] or {}
        trials.append({
            "patients": n, "passed": result["passed"], "p99_s": latency.get("p99"),
            "lag_p99_second_half": result["lag_chunks"]["p99_second_half"],
            "lost_chunks": result["lost_chunks"], "processes": result["processes"],
        })  # fmt: skip
        log(f"N={n}: {'pass' if result['passed'] else 'fail'} (p99 {latency.get('p99')} s, "
            f"lag p99 {result['lag_chunks']['p99_second_half']} chunks)")  # fmt: skip
        return bool(result["passed"])

    good, bad = 0, None
    n = start
    while n <= max_patients:
        if trial(n):
            good, n = n, n * 2
        else:
            bad = n
            break
    if bad is not None:
        while bad - good > max(1, int(precision * good)):
            mid = (good + bad) // 2
            if trial(mid):
                good = mid
            else:
                bad = mid
    return {"capacity_patients": good, "first_failing_patients": bad, "trials": trials}
