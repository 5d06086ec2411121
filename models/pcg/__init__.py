"""Heart-sound (PCG) stages: resampling, band-pass, envelope, S1/S2, windows, classifier."""

from ._cycle import CYCLE_FEATURES, cycle_features
from ._decision import (
    ALARM_ABNORMAL,
    ALARM_POOR_QUALITY,
    MESSAGES,
    AlarmEvent,
    PcgAlarms,
    WindowScore,
    recording_decision,
)
from ._envelope import HomomorphicEnvelope
from ._features import PcgWindow, Windower, WindowSpec, log_mel
from ._model import (
    HEADS,
    PASCAL_CLASSES,
    PcgClassifier,
    PcgNet,
    decode_pcg_artifact,
    encode_pcg_artifact,
    net_logits,
)
from ._monitor import (
    PCG_DETECTOR_VERSION,
    PcgMonitor,
    PcgUpdate,
    recording_windows,
    score_windows,
)
from ._quality import (
    HF_SHARE_MAX,
    HF_SPLIT_HZ,
    choose_hf_threshold,
    high_band_share,
    with_quality_rule,
)
from ._resample import Resampler
from ._segment import HeartSound, S1S2Segmenter, heart_rate_bpm

__all__ = [
    "ALARM_ABNORMAL",
    "ALARM_POOR_QUALITY",
    "CYCLE_FEATURES",
    "HEADS",
    "HF_SHARE_MAX",
    "HF_SPLIT_HZ",
    "MESSAGES",
    "PASCAL_CLASSES",
    "PCG_DETECTOR_VERSION",
    "AlarmEvent",
    "HeartSound",
    "HomomorphicEnvelope",
    "PcgAlarms",
    "PcgClassifier",
    "PcgMonitor",
    "PcgNet",
    "PcgUpdate",
    "PcgWindow",
    "Resampler",
    "S1S2Segmenter",
    "TrainConfig",
    "WindowScore",
    "WindowSpec",
    "Windower",
    "choose_hf_threshold",
    "cycle_features",
    "decode_pcg_artifact",
    "encode_pcg_artifact",
    "heart_rate_bpm",
    "high_band_share",
    "log_mel",
    "net_logits",
    "recording_decision",
    "recording_windows",
    "score_windows",
    "train_pcg_net",
    "with_quality_rule",
]
from ._train import TrainConfig, train_pcg_net
