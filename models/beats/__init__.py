"""Beat classification (AAMI N, S, V, F, Q): causal features, the model, its training.

:class:`BeatFeaturizer` computes each beat's features from the ECG pipeline's filtered samples
and beats (morphology around the R peak, RR intervals normalised by the patient's running
mean); :class:`BeatLabeller` labels beats with a :class:`BeatClassifier` injected per call;
:func:`train_beat_net` trains the network; artifacts are self-describing byte strings
(:func:`encode_artifact`) versioned by their SHA-256 (:func:`artifact_version`).
"""

from ._features import RR_FEATURES, BeatFeatures, BeatFeaturizer, FeatureSpec
from ._labeller import BeatLabeller
from ._model import (
    AAMI_CLASSES,
    BeatClassifier,
    BeatNet,
    artifact_version,
    decode_artifact,
    encode_artifact,
)
from ._train import TrainConfig, TrainResult, class_scores, train_beat_net

__all__ = [
    "AAMI_CLASSES",
    "RR_FEATURES",
    "BeatClassifier",
    "BeatFeatures",
    "BeatFeaturizer",
    "BeatLabeller",
    "BeatNet",
    "FeatureSpec",
    "TrainConfig",
    "TrainResult",
    "artifact_version",
    "class_scores",
    "decode_artifact",
    "encode_artifact",
    "train_beat_net",
]
