"""The pickled monitors' layouts are tied to ``ECG_STATE_VERSION`` and ``PCG_STATE_VERSION``.

A worker unpickles each patient's stored state (:class:`~streams.processor.PatientState`,
:class:`~streams.pcg_processor.PcgState`). If a new attribute is added to an object of a
monitor without bumping its state version, a state stored by the previous release unpickles
without it and the first chunk fails with an ``AttributeError`` (as happened to the ECG
monitor between versions 7 and 8). This test records the attribute names of every object of
each monitor after a fixed synthetic run, per class, in ``state_layout.json``, and fails
when they change while the version does not.

After a deliberate change: bump the version (``streams/processor.py`` or
``streams/pcg_processor.py``), then ``CW_UPDATE_STATE_LAYOUT=1 pytest
tests/unit/test_state_layout.py`` rewrites the record (it refuses while the version is the
recorded one).
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from streams.pcg_processor import PCG_STATE_VERSION, process_pcg_chunk
from streams.processor import ECG_STATE_VERSION
from tests.pcg_helpers import random_classifier
from tests.unit.test_pcg_pipeline import _chunks as pcg_chunks
from tests.unit.test_processor import chunks, run

RECORD = Path(__file__).with_name("state_layout.json")
PACKAGES = ("models", "streams", "cardiowatch")


def layout(root: object) -> dict[str, list[str]]:
    """Attribute names per class of every project object reachable from ``root``."""
    seen: set[int] = set()
    names: dict[str, set[str]] = {}
    todo: list[Any] = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            todo += obj.values()
            continue
        if isinstance(obj, list | tuple | set | frozenset | deque):
            todo += obj
            continue
        cls = type(obj)
        if cls.__module__.split(".")[0] not in PACKAGES:
            continue
        attrs = set(getattr(obj, "__dict__", {}))
        for klass in cls.__mro__:
            attrs.update(getattr(klass, "__slots__", ()))
        names.setdefault(f"{cls.__module__}.{cls.__qualname__}", set()).update(attrs)
        todo += [getattr(obj, a) for a in attrs if hasattr(obj, a)]
    return {k: sorted(v) for k, v in sorted(names.items())}


def ecg_layout() -> dict[str, Any]:
    state, _ = run(chunks(12, events=("vt@5:6",)))
    return {"version": ECG_STATE_VERSION, "classes": layout(state.monitor)}


def pcg_layout() -> dict[str, Any]:
    classifier, state = random_classifier(), None
    for c in pcg_chunks(12):
        _, state = process_pcg_chunk(state, c, classifier, now_unix_s=1.0)
    assert state is not None
    return {"version": PCG_STATE_VERSION, "classes": layout(state.monitor)}


@pytest.mark.parametrize(("name", "measure"), [("ecg", ecg_layout), ("pcg", pcg_layout)])
def test_a_monitor_layout_changes_only_with_its_state_version(name: str, measure: Any) -> None:
    now = measure()
    assert now["classes"], "the walk found no monitor objects"
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    recorded = record.get(name, {"version": None, "classes": {}})
    constant = {"ecg": "ECG_STATE_VERSION", "pcg": "PCG_STATE_VERSION"}[name]
    changed = sorted(
        k for k in now["classes"].keys() | recorded["classes"].keys()
        if now["classes"].get(k) != recorded["classes"].get(k)
    )  # fmt: skip
    # the record is rewritten only under a new version, so it cannot hide a missed bump
    assert not (changed and recorded["version"] == now["version"]), (
        f"the pickled {name} monitor's layout changed in {changed} but {constant} is still "
        f"{now['version']}: bump it, then rerun with CW_UPDATE_STATE_LAYOUT=1"
    )
    if os.environ.get("CW_UPDATE_STATE_LAYOUT"):
        RECORD.write_text(json.dumps({**record, name: now}, indent=1, sort_keys=True) + "\n")
    elif recorded["version"] != now["version"]:
        raise AssertionError(
            f"{constant} is {now['version']}, the recorded {name} layout is of version "
            f"{recorded['version']}: rerun with CW_UPDATE_STATE_LAYOUT=1"
        )


def test_the_walk_sees_a_new_attribute() -> None:
    state, _ = run(chunks(4))
    before = layout(state.monitor)
    state.monitor._arrhythmia.new_setting = 1.0  # type: ignore[attr-defined]
    after = layout(state.monitor)
    key = "models.rhythm._arrhythmia.ArrhythmiaDetector"
    assert set(after[key]) - set(before[key]) == {"new_setting"}
