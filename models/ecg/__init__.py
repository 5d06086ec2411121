"""ECG stages: causal filters, streaming QRS detection and beat-by-beat scoring.

Every stage follows the streaming shape of :mod:`models._stage`: ``process(chunk)`` returns
what became final, ``flush()`` ends the record, ``reset()`` equals a fresh object, and the
state survives a pickle round-trip. :class:`EcgBeatPipeline` is the one object a stream
worker or an offline analyzer calls per chunk; :func:`match_beats` scores its beats against
reference annotations as ANSI/AAMI EC57 does.
"""

from ._filters import BandpassFilter, NotchFilter
from ._length_transform import LengthTransformDetector
from ._pipeline import EcgBeatPipeline
from ._qrs import QrsDetector
from ._scoring import BeatScore, match_beats, nearest_distance
from ._types import Beat

__all__ = [
    "BandpassFilter",
    "Beat",
    "BeatScore",
    "EcgBeatPipeline",
    "LengthTransformDetector",
    "NotchFilter",
    "QrsDetector",
    "match_beats",
    "nearest_distance",
]
