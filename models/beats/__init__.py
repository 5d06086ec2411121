"""Beat classification (AAMI N, S, V, F, Q): causal features, the model, its training.

:class:`BeatFeaturizer` computes each beat's features from the ECG pipeline's filtered samples
and beats (morphology around the R peak, RR intervals normalised by the patient's running
mean); :class:`BeatLabeller` labels beats with a :class:`BeatClassifier` injected per call;
:func:`train_beat_net` trains the network; :func:`cross_validate` trains one network per
patient fold (the shipped ensemble, :class:`BeatEnsemble`) and :func:`fit_logit_bias` picks
decision offsets on out-of-fold logits; artifacts are self-describing byte strings
(:func:`encode_artifact`) versioned by their SHA-256 (:func:`artifact_version`).
"""

from ._features import (
    ALL_RR_FEATURES,
    RR_FEATURES,
    SHIPPED_RR_FEATURES,
    SINUS_FEATURES,
    TEMPLATE_FEATURES,
    BeatFeatures,
    BeatFeaturizer,
    FeatureSpec,
)
from ._labeller import BeatLabeller
from ._model import (
    AAMI_CLASSES,
    BeatClassifier,
    BeatEnsemble,
    BeatNet,
    artifact_version,
    decode_artifact,
    encode_artifact,
)
from ._select import (
    CrossValResult,
    cross_validate,
    fit_logit_bias,
    net_logits,
    scores_table,
    seed_ensemble,
)
from ._train import (
    PREMATURE_EXPONENTS,
    TrainConfig,
    TrainResult,
    class_scores,
    premature_copies,
    selection_score,
    train_beat_net,
)

__all__ = [
    "AAMI_CLASSES",
    "ALL_RR_FEATURES",
    "PREMATURE_EXPONENTS",
    "RR_FEATURES",
    "SHIPPED_RR_FEATURES",
    "SINUS_FEATURES",
    "TEMPLATE_FEATURES",
    "BeatClassifier",
    "BeatEnsemble",
    "BeatFeatures",
    "BeatFeaturizer",
    "BeatLabeller",
    "BeatNet",
    "CrossValResult",
    "FeatureSpec",
    "TrainConfig",
    "TrainResult",
    "artifact_version",
    "class_scores",
    "cross_validate",
    "decode_artifact",
    "encode_artifact",
    "fit_logit_bias",
    "net_logits",
    "premature_copies",
    "scores_table",
    "seed_ensemble",
    "selection_score",
    "train_beat_net",
]
