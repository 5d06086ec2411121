"""The worker entry point: ``cardiowatch worker`` runs :func:`run_worker`."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import faust
import torch
from prometheus_client import CollectorRegistry, start_http_server

from cardiowatch.services import ensure_topics, free_port
from cardiowatch.settings import Settings
from streams.app import create_app

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Run one stream worker until SIGINT/SIGTERM; serves ``/metrics`` on ``metrics_port``."""
    if not settings.kafka_url or not settings.redis_url:
        raise SystemExit(
            "the worker needs CARDIOWATCH_KAFKA_URL and CARDIOWATCH_REDIS_URL "
            "(or run 'cardiowatch up', which starts both)"
        )
    ensure_topics(settings.kafka_url, settings.chunk_topics, settings.partitions)
    # Each worker process gets its own faust data directory, so several can share a machine.
    Path(settings.worker_data_dir).mkdir(parents=True, exist_ok=True)
    datadir = tempfile.mkdtemp(
        prefix=f"{settings.app_id}-{os.getpid()}-", dir=settings.worker_data_dir
    )
    settings = settings.replace(worker_data_dir=datadir)
    # Beat inference is a few beats per chunk: one thread, leaving the cores to the stream, and
    # plain convolutions, since oneDNN's set-up per call dominates such tiny batches (a 2-beat
    # forward pass took 684 us with it and 254 us without, measured on this 2-core machine).
    torch.set_num_threads(1)
    torch.backends.mkldnn.set_flags(False)  # type: ignore[no-untyped-call]  # unannotated in torch
    registry = CollectorRegistry()
    app = create_app(settings, registry)
    port = settings.metrics_port or free_port(settings.metrics_host)
    start_http_server(port, addr=settings.metrics_host, registry=registry)
    log.warning("worker metrics on http://%s:%d/metrics", settings.metrics_host, port)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
