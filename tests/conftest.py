"""Shared fixtures: the real services (Tansu broker, redis-server) on free loopback ports.

Nothing here depends on services already running on the machine (a Redis on 6379, say): each
session starts its own and stops it afterwards.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from cardiowatch.services import EmbeddedServices
from cardiowatch.settings import Settings, default_data_dir

hypothesis_settings.register_profile(
    "deterministic", derandomize=True, deadline=None, print_blob=True
)
hypothesis_settings.load_profile("deterministic")


def mitdb_path() -> Path:
    """The MIT-BIH directory the tests read (``CARDIOWATCH_DATA`` or ``../shared/data``)."""
    return Path(os.environ.get("CARDIOWATCH_DATA") or default_data_dir()) / "mitdb"


@pytest.fixture(scope="session")
def mitdb() -> Path:
    """MIT-BIH directory; the tests that need it fail loudly when it is missing."""
    path = mitdb_path()
    if not (path / "100.hea").exists():
        pytest.fail(f"MIT-BIH records not found in {path}: set CARDIOWATCH_DATA")
    return path


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A Tansu broker and a redis-server started for this test session."""
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is required: 'make test' installs it, or apt-get install redis-server"
        )
    log_dir = tmp_path_factory.mktemp("services")
    base = Settings.from_env({}, data_dir=str(mitdb_path().parent))
    with EmbeddedServices(base, log_dir) as embedded:
        yield embedded.settings
