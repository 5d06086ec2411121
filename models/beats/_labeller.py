"""The labelling stage: final beats in, the same beats with their AAMI label out."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from models.ecg import Beat

from ._features import BeatFeatures, BeatFeaturizer, FeatureSpec
from ._model import BeatClassifier

__all__ = ["BeatLabeller"]


class BeatLabeller:
    """Streaming stage that labels beats with a model injected at each call.

    Parameters
    ----------
    fs_hz
        Sampling rate of the filtered samples, Hz.
    start_index
        Absolute sample index of the first filtered sample.
    spec
        Feature parameters; a classifier passed to :meth:`process` must have been trained
        with the same.

    Notes
    -----
    The classifier is an argument of :meth:`process` and :meth:`flush`, never an attribute:
    the stage's state (a :class:`BeatFeaturizer`) is pickled with the patient every chunk,
    the model is shared by the worker's patients and hot-swapped between chunks. A beat is
    returned once its next beat is known (one-beat latency), labelled by the classifier of
    that call (``label=None`` without one).

    Examples
    --------
    >>> import numpy as np
    >>> labeller = BeatLabeller(360.0)
    >>> labeller.process(np.zeros((720, 1)), [Beat(100), Beat(400)])
    [Beat(sample_index=100, quality=1.0, label=None)]
    """

    def __init__(
        self, fs_hz: float, *, start_index: int = 0, spec: FeatureSpec | None = None
    ) -> None:
        self.fs_hz = float(fs_hz)
        self.start_index = int(start_index)
        self.spec = spec if spec is not None else FeatureSpec()
        self._features = BeatFeaturizer(self.fs_hz, start_index=self.start_index, spec=self.spec)

    @property
    def latency_samples(self) -> int:
        """Samples of morphology after the R peak; the next beat is needed as well."""
        return self._features.latency_samples

    def reset(self) -> None:
        """Forget the stream; afterwards the stage equals a fresh one."""
        self._features.reset()

    def process(
        self,
        filtered: npt.NDArray[np.floating],
        beats: list[Beat],
        classifier: BeatClassifier | None = None,
    ) -> list[Beat]:
        """Consume a filtered chunk and its beats; return the beats now final, labelled.

        Parameters
        ----------
        filtered
            Filtered samples ``(n_samples, n_leads)`` continuing the previous chunk.
        beats
            Beats detected in this chunk.
        classifier
            Model to label with (``None``: beats come out with ``label=None``).

        Returns
        -------
        list of Beat
            Final beats in order.
        """
        return self.process_with_morph(filtered, beats, classifier)[0]

    def process_with_morph(
        self,
        filtered: npt.NDArray[np.floating],
        beats: list[Beat],
        classifier: BeatClassifier | None = None,
    ) -> tuple[list[Beat], npt.NDArray[np.float32]]:
        """:meth:`process`, also returning each final beat's morphology window.

        Returns
        -------
        tuple of (list of Beat, ndarray)
            The final beats and their windows, shape ``(n_beats, spec.n_morph)``, in units of
            the running mean peak-to-peak amplitude.
        """
        feats = self._features.process(filtered, beats)
        return self._label(feats, classifier), feats.morph

    def flush(self, classifier: BeatClassifier | None = None) -> list[Beat]:
        """End the record: label the pending beats, then reset."""
        return self.flush_with_morph(classifier)[0]

    def flush_with_morph(
        self, classifier: BeatClassifier | None = None
    ) -> tuple[list[Beat], npt.NDArray[np.float32]]:
        """:meth:`flush`, also returning the beats' morphology windows."""
        feats = self._features.flush()
        return self._label(feats, classifier), feats.morph

    def _label(self, feats: BeatFeatures, classifier: BeatClassifier | None) -> list[Beat]:
        if classifier is None:
            labels: list[str | None] = [None] * len(feats)
        else:
            if classifier.spec != self.spec:
                raise ValueError(f"model {classifier.version} was trained with other features")
            labels = list(classifier.predict(feats))
        return [
            Beat(int(s), float(q), label)
            for s, q, label in zip(feats.sample_index, feats.quality, labels, strict=True)
        ]
