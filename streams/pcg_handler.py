"""The worker's heart-sound handler: decode, process with the PCG monitor, publish, count.

It reuses the ECG handler's decoding, gap repair (:mod:`streams.gap_repair`), publishing,
dead-lettering, storing and vitals flushing (:class:`streams.app.EcgHandler`; it overrides
only the stage code, :meth:`PcgHandler.process`, and the per-kind metrics) and keeps its
patients in its own table (``pcg_patients``), so the ECG path is untouched. The classifier
comes from the worker's ``pcg`` model cache (:mod:`streams.model_registry`):
``CARDIOWATCH_PCG_MODEL`` until a version is published in Redis, then hot-swapped like the
beat model. Without one (a missing or broken default), S1/S2
and heart rate still run but no window is classified and no PCG alert is raised.
"""

from __future__ import annotations

from typing import Any

from cardiowatch.schemas import SampleChunk
from models.pcg import PcgClassifier
from streams.app import EcgHandler
from streams.model_registry import PCG, ModelCache
from streams.pcg_processor import PcgState, process_pcg_chunk
from streams.processor import ChunkOutputs, ChunkResult

__all__ = ["PcgHandler"]


class PcgHandler(EcgHandler):
    """Handles one heart-sound chunk message (see the module docstring)."""

    kind = "pcg"

    def __init__(self, *args: Any, pcg_models: ModelCache[PcgClassifier], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pcg_models = pcg_models

    async def process(
        self, state: PcgState | None, chunk: SampleChunk
    ) -> tuple[ChunkResult, PcgState | None]:
        """The heart-sound stage code on one chunk: the result and the patient's new state.

        :meth:`EcgHandler.apply` calls it (after decoding and gap repair in
        :meth:`EcgHandler.handle`) and publishes, stores and counts as for ECG.
        """
        classifier = await self.pcg_models.ensure()
        self.metrics.set_model_version(PCG, None if classifier is None else classifier.version)
        return process_pcg_chunk(state, chunk, classifier)

    def count_processed(self, chunk: SampleChunk, outputs: ChunkOutputs) -> None:
        """Nothing beyond the shared counts (the patient gauges follow the ECG table)."""
