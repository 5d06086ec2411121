"""A :class:`~simulators.synthetic.SyntheticPatient` as a replay source."""

from __future__ import annotations

from simulators.sources import Block, SignalInfo
from simulators.synthetic import SyntheticEvent, SyntheticPatient, to_digital

GAIN_ADU_PER_MV = 200.0
LEAD_NAMES = ("MLII", "V1", "V5")


def parse_event(spec: str) -> SyntheticEvent:
    """Parse ``KIND@START_S:DURATION_S[:VALUE]``.

    >>> parse_event("tachycardia@40:30:160")
    SyntheticEvent(kind='tachycardia', start_s=40.0, duration_s=30.0, value=160.0)
    """
    try:
        kind, timing = spec.split("@", 1)
        parts = [float(p) for p in timing.split(":")]
        start_s, duration_s = parts[0], parts[1]
        value = parts[2] if len(parts) > 2 else None
    except (ValueError, IndexError):
        raise ValueError(f"event {spec!r} is not KIND@START_S:DURATION_S[:VALUE]") from None
    return SyntheticEvent(kind, start_s, duration_s, value)  # type: ignore[arg-type]


class SyntheticSource:
    """Endless digital samples (200 ADU/mV, like MIT-BIH) from a synthetic patient."""

    def __init__(self, patient: SyntheticPatient, *, name: str = "synthetic") -> None:
        self.patient = patient
        self.info = SignalInfo(
            source=name,
            fs_hz=patient.fs_hz,
            leads=LEAD_NAMES[: patient.n_leads],
            gain=(GAIN_ADU_PER_MV,) * patient.n_leads,
            baseline=(0,) * patient.n_leads,
            units=("mV",) * patient.n_leads,
        )

    def read(self, n_samples: int) -> Block:
        """The next ``n_samples`` samples with their ground-truth beat annotations."""
        start = self.patient.position
        x_mv = self.patient.generate(n_samples)
        annotations = self.patient.annotations_between(start, start + n_samples)
        return Block(start, to_digital(x_mv, GAIN_ADU_PER_MV), annotations)
