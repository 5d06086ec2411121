"""The pickled ECG monitor's layout is tied to ``ECG_STATE_VERSION``.

A worker unpickles each patient's stored :class:`~streams.processor.PatientState`. If a new
attribute is added to an object of the monitor without bumping ``ECG_STATE_VERSION``, a state
stored by the previous release unpickles without it and the first chunk fails with an
``AttributeError`` (as happened between versions 7 and 8). This test records the attribute
names of every object of the monitor after a fixed synthetic run, per class, in
``ecg_state_layout.json``, and fails when they change while the version does not.

After a deliberate change: bump ``ECG_STATE_VERSION`` in ``streams/processor.py``, then
``CW_UPDATE_STATE_LAYOUT=1 pytest tests/unit/test_state_layout.py`` rewrites the record.
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

from streams.processor import ECG_STATE_VERSION
from tests.unit.test_processor import chunks, run

RECORD = Path(__file__).with_name("ecg_state_layout.json")
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


def current() -> dict[str, Any]:
    state, _ = run(chunks(12, events=("vt@5:6",)))
    return {"version": ECG_STATE_VERSION, "classes": layout(state.monitor)}


def test_the_monitor_layout_changes_only_with_the_state_version() -> None:
    now = current()
    if os.environ.get("CW_UPDATE_STATE_LAYOUT"):
        RECORD.write_text(json.dumps(now, indent=1) + "\n")
    recorded = json.loads(RECORD.read_text())
    assert now["classes"], "the walk found no monitor objects"
    assert "models.rhythm._arrhythmia.ArrhythmiaDetector" in now["classes"]
    if recorded["version"] == now["version"]:
        changed = {
            k for k in now["classes"].keys() | recorded["classes"].keys()
            if now["classes"].get(k) != recorded["classes"].get(k)
        }  # fmt: skip
        assert not changed, (
            f"the pickled monitor's layout changed in {sorted(changed)} but ECG_STATE_VERSION "
            f"is still {now['version']}: bump it (streams/processor.py), then rerun with "
            "CW_UPDATE_STATE_LAYOUT=1"
        )
    else:
        raise AssertionError(
            f"ECG_STATE_VERSION is {now['version']}, the recorded layout is of version "
            f"{recorded['version']}: rerun with CW_UPDATE_STATE_LAYOUT=1"
        )


def test_the_walk_sees_a_new_attribute() -> None:
    state, _ = run(chunks(4))
    before = layout(state.monitor)
    state.monitor._arrhythmia.new_setting = 1.0  # type: ignore[attr-defined]
    after = layout(state.monitor)
    key = "models.rhythm._arrhythmia.ArrhythmiaDetector"
    assert set(after[key]) - set(before[key]) == {"new_setting"}
