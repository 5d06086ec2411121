"""A small Server-Sent Events reader for the tests and the benchmark (over httpx)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SseMessage:
    """One dispatched message: ``event``, ``id`` and ``data`` fields (``data`` joined)."""

    event: str
    id: str | None
    data: str

    def json(self) -> Any:
        """``data`` parsed as JSON."""
        return json.loads(self.data)


def parse(lines: Iterator[str]) -> Iterator[SseMessage]:
    """Messages of an event stream, including those without data (an ``id:`` only)."""
    event, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or event_id is not None:
                yield SseMessage(event, event_id, "\n".join(data))
            event, event_id, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "id":
            event_id = value
        elif name == "data":
            data.append(value)
