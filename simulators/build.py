"""Turn ``cardiowatch simulate`` options into virtual patients."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cardiowatch.settings import Settings
from simulators.patients import load_records, mitdb_dir, patient_id, record_patients
from simulators.replay import VirtualPatient
from simulators.synthetic import SyntheticPatient
from simulators.synthetic_source import SyntheticSource, parse_event


def synthetic_patients(
    n: int, *, events: Sequence[str], seed: int, first_index: int, fs_hz: float = 360.0
) -> list[VirtualPatient]:
    """``n`` synthetic patients, heart rates spread over 60-90 bpm; ``events`` go to the first."""
    parsed = tuple(parse_event(e) for e in events)
    patients = []
    for i in range(n):
        patient = SyntheticPatient(
            fs_hz, n_leads=2, heart_rate_bpm=60.0 + (i * 7) % 31, seed=seed + i,
            events=parsed if i == 0 else (),
        )  # fmt: skip
        patients.append(VirtualPatient(patient_id(first_index + i), SyntheticSource(patient)))
    return patients


def build_patients(
    settings: Settings,
    *,
    records: str,
    n_record_patients: int | None,
    n_synthetic: int,
    events: Sequence[str],
    loop: bool,
    seed: int,
    default_records: Sequence[str],
) -> list[VirtualPatient]:
    """Record patients (when the data is there or asked for) followed by synthetic ones."""
    names = [r.strip() for r in records.split(",") if r.strip()]
    directory = mitdb_dir(settings)
    patients: list[VirtualPatient] = []
    if not names and n_record_patients != 0 and Path(directory, "100.hea").exists():
        names = list(default_records)
    if names and n_record_patients != 0:
        loaded = load_records(directory, names)
        count = len(loaded) if n_record_patients is None else n_record_patients
        patients += record_patients(loaded, count, loop=loop)
    patients += synthetic_patients(n_synthetic, events=events, seed=seed, first_index=len(patients))
    if not patients:
        raise SystemExit(
            f"nothing to replay: no MIT-BIH records in {directory} (set CARDIOWATCH_DATA or run "
            "'cardiowatch data fetch mitdb') and no --synthetic patients"
        )
    return patients
