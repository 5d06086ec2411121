"""Rhythm monitoring: heart rate, signal loss and rhythm alarms, as streaming stages.

Pure computation on NumPy; every stage follows the shape in ``models/_stage.py``.
"""

from models.rhythm._alarms import AlarmEngine, AlarmInput
from models.rhythm._arrhythmia import ARRHYTHMIA_PRIORITY, LATCHING_KINDS, ArrhythmiaDetector
from models.rhythm._beat_shape import BeatShape, BeatShapeMeasures
from models.rhythm._heart_rate import HeartRateMonitor
from models.rhythm._monitor import RhythmMonitor
from models.rhythm._rules import LabelledBeat
from models.rhythm._signal_quality import SignalLossDetector
from models.rhythm._types import (
    AlarmEvent,
    AlarmKind,
    AlarmState,
    ClockTick,
    HeartRateUpdate,
    Priority,
    RhythmUpdate,
    SignalLossEvent,
)

__all__ = [
    "ARRHYTHMIA_PRIORITY",
    "LATCHING_KINDS",
    "AlarmEngine",
    "AlarmEvent",
    "AlarmInput",
    "AlarmKind",
    "AlarmState",
    "ArrhythmiaDetector",
    "BeatShape",
    "BeatShapeMeasures",
    "ClockTick",
    "HeartRateMonitor",
    "HeartRateUpdate",
    "LabelledBeat",
    "Priority",
    "RhythmMonitor",
    "RhythmUpdate",
    "SignalLossDetector",
    "SignalLossEvent",
]
