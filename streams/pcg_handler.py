"""The worker's heart-sound handler: decode, process with the PCG monitor, publish, count.

It reuses the ECG handler's decoding, gap repair (:mod:`streams.gap_repair`), publishing,
dead-lettering and vitals flushing (:class:`streams.app.EcgHandler`; it overrides only
:meth:`PcgHandler.apply`) and keeps its patients in its own table (``pcg_patients``), so the
ECG path is untouched. The classifier comes from the worker's ``pcg`` model cache
(:mod:`streams.model_registry`): ``CARDIOWATCH_PCG_MODEL`` until a version is published in
Redis, then hot-swapped like the beat model. Without one (a missing or broken default), S1/S2
and heart rate still run but no window is classified and no PCG alert is raised.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cardiowatch.schemas import SampleChunk, SchemaError
from models.pcg import PcgClassifier
from streams.app import EcgHandler
from streams.model_registry import PCG, ModelCache
from streams.pcg_processor import PcgState, process_pcg_chunk

log = logging.getLogger(__name__)

__all__ = ["PcgHandler"]


class PcgHandler(EcgHandler):
    """Handles one heart-sound chunk message (see the module docstring)."""

    kind = "pcg"

    def __init__(self, *args: Any, pcg_models: ModelCache[PcgClassifier], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pcg_models = pcg_models

    async def apply(
        self,
        chunk: SampleChunk,
        key: bytes | None,
        value: bytes,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """Process a decoded heart-sound chunk; publish and store the result.

        :meth:`EcgHandler.handle` decodes the message and reads back skipped records first
        (gap repair), then calls this, as it does for ECG.
        """
        m = self.metrics
        t1 = time.perf_counter()
        table_key = chunk.patient_id.encode()
        state: PcgState | None = self.load_pickled(table_key)
        classifier = await self.pcg_models.ensure()
        m.set_model_version(PCG, None if classifier is None else classifier.version)
        try:
            result, new_state = process_pcg_chunk(state, chunk, classifier)
        except Exception as exc:  # a stage bug must not stop the worker
            log.exception("heart-sound processing failed (%s)", type(exc).__name__)
            failure = SchemaError("processing_error", type(exc).__name__)
            await self.dead_letter(failure, key, value, topic, partition, offset)
            return
        t2 = time.perf_counter()
        m.stage_seconds.labels(stage="detect").observe(t2 - t1)
        m.chunks.labels(outcome=result.outcome).inc()
        if result.error is not None:
            await self.dead_letter(result.error, key, value, topic, partition, offset)
            return
        assert result.outputs is not None
        assert new_state is not None
        if result.restarted:
            m.discontinuities.inc()
        await self.publish(chunk, result.outputs)
        if result.outcome == "processed":
            m.samples.inc(chunk.n_samples)
            for alert in result.outputs.alerts:
                m.alerts.labels(alert.alarm_type, alert.priority, alert.state).inc()
            new_state.source_partition = partition
            new_state.source_offset = offset
            self.store_pickled(table_key, new_state)
        m.stage_seconds.labels(stage="publish").observe(time.perf_counter() - t2)
        if chunk.sent_unix_s > 0:
            m.end_to_end_seconds.observe(max(0.0, time.time() - chunk.sent_unix_s))
