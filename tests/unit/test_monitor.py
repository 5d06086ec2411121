"""The per-patient EcgMonitor: chunk invariance, pickling, reset, absolute sample indices."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings

from models.monitor import EcgMonitor, MonitorUpdate
from simulators.synthetic import SyntheticEvent, SyntheticPatient
from tests.stage_contract import split_points

FS_HZ = 360.0


def signal(seconds: float = 40.0) -> npt.NDArray[np.float64]:
    events = (
        SyntheticEvent("asystole", 12.0, 6.0),
        SyntheticEvent("tachycardia", 25.0, 12.0, 170.0),
    )
    patient = SyntheticPatient(FS_HZ, n_leads=2, heart_rate_bpm=70.0, seed=4, events=events)
    return patient.generate(int(seconds * FS_HZ))


X = signal()


def run(monitor: EcgMonitor, x: npt.NDArray[np.float64], splits: list[int]) -> list[MonitorUpdate]:
    bounds = [0, *splits, len(x)]
    updates = [monitor.process(x[a:b]) for a, b in itertools.pairwise(bounds)]
    return [*updates, monitor.flush()]


def events(updates: list[MonitorUpdate]) -> tuple[list[int], list[tuple[str, str, int]]]:
    beats = [b.sample_index for u in updates for b in u.beats]
    alarms = [(str(a.kind), str(a.state), a.onset_sample) for u in updates for a in u.alarms]
    return beats, alarms


WHOLE = events(run(EcgMonitor(FS_HZ, n_leads=2), X, []))


def test_the_scenario_raises_asystole_and_tachycardia() -> None:
    _, alarms = WHOLE
    kinds = {(kind, state) for kind, state, _ in alarms}
    assert ("asystole", "raise") in kinds
    assert ("tachycardia", "raise") in kinds


@settings(max_examples=15)
@given(splits=split_points(len(X), max_splits=20))
def test_any_chunking_gives_the_same_beats_and_alarms(splits: list[int]) -> None:
    assert events(run(EcgMonitor(FS_HZ, n_leads=2), X, splits)) == WHOLE


def test_pickled_mid_stream_continues_exactly() -> None:
    monitor = EcgMonitor(FS_HZ, n_leads=2)
    first = [monitor.process(X[i : i + 360]) for i in range(0, 15 * 360, 360)]
    resumed = pickle.loads(pickle.dumps(monitor))
    rest = [resumed.process(X[i : i + 360]) for i in range(15 * 360, len(X), 360)]
    assert events([*first, *rest, resumed.flush()]) == WHOLE


def test_reset_equals_fresh() -> None:
    monitor = EcgMonitor(FS_HZ, n_leads=2)
    run(monitor, X[: 10 * 360], [])
    monitor.reset()
    assert events(run(monitor, X, [])) == WHOLE


def test_start_index_shifts_every_event() -> None:
    offset = 1_000_000
    shifted = events(run(EcgMonitor(FS_HZ, n_leads=2, start_index=offset), X, [3600]))
    beats, alarms = WHOLE
    assert shifted[0] == [b + offset for b in beats]
    assert shifted[1] == [(k, s, o + offset) for k, s, o in alarms]


def test_empty_chunk_changes_nothing() -> None:
    monitor = EcgMonitor(FS_HZ, n_leads=2)
    update = monitor.process(X[:0])
    assert update.beats == []
    assert update.alarms == []
    assert update.end_sample == 0
