"""The shape every streaming stage shares (see ``docs/architecture.md``).

A stage stores its parameters in ``__init__``, builds its private state in
``reset()``, consumes chunks of any length with ``process(chunk)`` and returns
only what became final, and ends a record with ``flush()``. Events carry an
absolute integer ``sample_index``; a stage never looks at wall-clock time.
State is plain Python/NumPy, so a stage survives ``pickle`` and a worker that
takes over a patient continues exactly.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

Out_co = TypeVar("Out_co", covariant=True)
In_contra = TypeVar("In_contra", contravariant=True)


@runtime_checkable
class Stage(Protocol[In_contra, Out_co]):
    """A causal, chunk-invariant, picklable streaming stage."""

    @property
    def latency_samples(self) -> int:
        """How many samples of look-ahead the stage needs before an output is final."""
        ...

    def reset(self) -> None:
        """Forget everything seen so far; afterwards the stage equals a fresh one."""
        ...

    def process(self, chunk: In_contra) -> Out_co:
        """Consume ``chunk`` (any length, including zero) and return what became final."""
        ...

    def flush(self) -> Out_co:
        """End the record: return whatever is still pending."""
        ...
