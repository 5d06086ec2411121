"""The ``cardiowatch`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress

from cardiowatch.metrics import SimulatorMetrics
from cardiowatch.settings import Settings

DEMO_RECORDS = ("100", "119", "200", "208", "210", "233")


def _settings() -> Settings:
    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return settings


@click.group()
def main() -> None:
    """Cardiowatch: real-time cardiac monitoring on Kafka."""


@main.command("settings")
def settings_cmd() -> None:
    """Print every setting: environment variable, value in force, meaning."""
    current = Settings.from_env()
    for name in Settings.__dataclass_fields__:
        doc = Settings.__dataclass_fields__[name].metadata["doc"]
        click.echo(f"{Settings.env_name(name)}={getattr(current, name)!r}\n    {doc}")


@main.command()
def worker() -> None:
    """Run one stream worker (faust) with /metrics."""
    from streams.worker import run_worker

    run_worker(_settings())


_SIMULATE_OPTIONS = [
    click.option("--records", default="",
                 help="Comma-separated MIT-BIH records (default: a demo set)."),
    click.option("--patients", type=int, default=None,
                 help="Virtual patients from records (default: one per record)."),
    click.option("--synthetic", type=int, default=0, help="Additional synthetic patients."),
    click.option("--event", "events", multiple=True,
                 help="Synthetic event KIND@START_S:DURATION_S[:VALUE], e.g. asystole@20:8."),
    click.option("--speed", type=float, default=1.0,
                 help="1 = real time, 10 = ten times faster, 0 = as fast as possible."),
    click.option("--loop/--no-loop", default=True, help="Start records again at their end."),
    click.option("--duration", "duration_s", type=float, default=None,
                 help="Seconds of signal to send (default: until stopped)."),
    click.option("--seed", type=int, default=0, help="Seed of the synthetic patients."),
    click.option("--chunk-s", type=float, default=None,
                 help="Seconds of signal per message (default: CARDIOWATCH_CHUNK_S, 1.0)."),
]  # fmt: skip


def _simulate_options(f: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_SIMULATE_OPTIONS):
        f = option(f)
    return f


def _simulate_argv(
    *, records: str, patients: int | None, synthetic: int, events: Sequence[str], speed: float,
    loop: bool, duration_s: float | None, seed: int, chunk_s: float | None,
) -> list[str]:  # fmt: skip
    """The ``cardiowatch simulate`` arguments that reproduce these options."""
    argv = ["--speed", str(speed), "--seed", str(seed), "--synthetic", str(synthetic)]
    argv.append("--loop" if loop else "--no-loop")
    if records:
        argv += ["--records", records]
    if patients is not None:
        argv += ["--patients", str(patients)]
    if duration_s is not None:
        argv += ["--duration", str(duration_s)]
    for event in events:
        argv += ["--event", event]
    if chunk_s is not None:
        argv += ["--chunk-s", str(chunk_s)]
    return argv


def _simulator_metrics(settings: Settings) -> SimulatorMetrics | None:
    """Serve the simulator's /metrics when ``CARDIOWATCH_SIMULATOR_METRICS_PORT`` >= 0."""
    if settings.simulator_metrics_port < 0:
        return None
    from prometheus_client import CollectorRegistry, start_http_server

    from cardiowatch.services import free_port

    registry = CollectorRegistry()
    port = settings.simulator_metrics_port or free_port(settings.metrics_host)
    start_http_server(port, addr=settings.metrics_host, registry=registry)
    logging.getLogger(__name__).warning(
        "simulator metrics on http://%s:%d/metrics", settings.metrics_host, port
    )
    return SimulatorMetrics(registry)


@main.command()
@_simulate_options
@click.option(
    "--kind",
    type=click.Choice(["ecg", "pcg"]),
    default="ecg",
    help="pcg: replay heart-sound recordings (--files) into CARDIOWATCH_TOPIC_PCG.",
)
@click.option(
    "--files",
    default="",
    help="pcg: comma-separated audio files (WAV/FLAC, any rate; default: a demo set).",
)
def simulate(
    records: str, patients: int | None, synthetic: int, events: tuple[str, ...], speed: float,
    loop: bool, duration_s: float | None, seed: int, chunk_s: float | None, kind: str,
    files: str,
) -> None:  # fmt: skip
    """Replay records (and synthetic patients) into the ECG or heart-sound samples topic."""
    from simulators.build import build_patients
    from simulators.patients import run_replay

    settings = _settings()
    if chunk_s is not None:
        if not 0.01 <= chunk_s <= 60:
            raise click.BadParameter("between 0.01 and 60 seconds", param_hint="--chunk-s")
        settings = settings.replace(chunk_s=chunk_s)
    if not settings.kafka_url:
        raise click.UsageError("set CARDIOWATCH_KAFKA_URL (or use 'cardiowatch up')")
    if kind == "pcg":
        from simulators.audio import DEMO_PCG_FILES, pcg_patients

        named = [Path(f) for f in _names(files)]
        paths = named or [Path(settings.data_dir) / f for f in DEMO_PCG_FILES]
        try:
            vps = pcg_patients(paths, patients, loop=loop)
        except (FileNotFoundError, ValueError) as exc:
            raise click.UsageError(str(exc)) from None
    else:
        vps = build_patients(
            settings, records=records, n_record_patients=patients, n_synthetic=synthetic,
            events=events, loop=loop, seed=seed, default_records=DEMO_RECORDS,
        )  # fmt: skip

    metrics = _simulator_metrics(settings)

    async def go() -> None:
        stop = asyncio.Event()
        loop_ = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop_.add_signal_handler(sig, stop.set)
        stats = await run_replay(
            settings,
            vps,
            speed=speed,
            duration_s=duration_s,
            stop=stop,
            kind=kind,
            metrics=metrics,
        )
        click.echo(f"sent {stats.chunks_sent} chunks in {stats.elapsed_s:.1f} s")

    asyncio.run(go())


@main.command()
@_simulate_options
@click.option(
    "--for", "run_for_s", type=float, default=None, help="Stop after this many wall-clock seconds."
)
@click.option(
    "--log-dir",
    type=click.Path(path_type=Path),
    default=Path("out/up"),
    help="Where service logs go.",
)
def up(
    records: str, patients: int | None, synthetic: int, events: tuple[str, ...], speed: float,
    loop: bool, duration_s: float | None, seed: int, chunk_s: float | None,
    run_for_s: float | None, log_dir: Path,
) -> None:  # fmt: skip
    """Start broker, Redis, worker and simulator, and show patients and alerts live."""
    from cardiowatch.up import run_up

    settings = _settings()
    if synthetic == 0 and not events:
        synthetic, events = 2, ("asystole@25:8", "tachycardia@40:30:160")
    argv = _simulate_argv(
        records=records, patients=patients, synthetic=synthetic, events=events,
        speed=speed, loop=loop, duration_s=duration_s, seed=seed, chunk_s=chunk_s,
    )  # fmt: skip
    sys.exit(run_up(settings, argv, log_dir=log_dir, duration_s=run_for_s))


@main.group()
def analyze() -> None:
    """Offline twins of the stream (same stage code)."""


@analyze.command("ecg")
@click.argument("record", type=click.Path(path_type=Path))
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write the result.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Beat-classifier artifact (default: CARDIOWATCH_BEATS_MODEL; empty = no labels).",
)
def analyze_ecg(record: Path, json_out: Path, model_path: Path | None) -> None:
    """Detect beats and alarms in a WFDB RECORD (path without extension, or a mitdb name)."""
    from streams.offline import analyze_record

    settings = _settings()
    path = (
        record
        if record.with_suffix(".hea").exists()
        else Path(settings.data_dir) / "mitdb" / record
    )
    if not path.with_suffix(".hea").exists():
        raise click.UsageError(f"no WFDB header for {record} (looked at {path}.hea)")
    classifier = None
    model = model_path or (Path(settings.beats_model) if settings.beats_model else None)
    if model is not None:
        from models.beats import BeatClassifier

        classifier = BeatClassifier.from_bytes(model.read_bytes())
    result = analyze_record(
        path, chunk_s=settings.chunk_s, mains_hz=settings.mains_hz, classifier=classifier
    )
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result))
    click.echo(f"{result['record']}: {len(result['beats'])} beats, {len(result['alarms'])} alarms")


@analyze.command("pcg")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write the results (a list, one object per file).",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="PCG classifier artifact (default: CARDIOWATCH_PCG_MODEL).",
)
def analyze_pcg(files: tuple[Path, ...], json_out: Path, model_path: Path | None) -> None:
    """Segment S1/S2 and classify heart-sound FILES (any audio format and rate)."""
    from models.pcg import PcgClassifier
    from simulators.audio import resolve_audio
    from streams.pcg_offline import analyze_audio

    settings = _settings()
    model = model_path or (Path(settings.pcg_model) if settings.pcg_model else None)
    classifier = None if model is None else PcgClassifier.from_bytes(model.read_bytes())
    results = []
    for f in files:
        try:
            result = analyze_audio(resolve_audio(f), classifier, chunk_s=settings.chunk_s)
        except (FileNotFoundError, ValueError) as exc:
            raise click.UsageError(str(exc)) from None
        results.append(result)
        p = result["abnormal_probability"]
        click.echo(f"{f}: {result['decision']} (abnormal {p}, quality {result['quality']}, "
                   f"HR {result['heart_rate_bpm']})")  # fmt: skip
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(results, indent=1))


@main.group()
def data() -> None:
    """Datasets."""


#: PhysioNet databases ``data fetch`` knows: MIT-BIH Arrhythmia (everything), MIT-BIH Atrial
#: Fibrillation (``evaluate alarms --database afdb``: 23 ten-hour records with signals).
FETCHABLE = ("mitdb", "afdb")


@data.command("fetch")
@click.argument("database", type=click.Choice(FETCHABLE))
def data_fetch(database: str) -> None:
    """Download DATABASE from PhysioNet into CARDIOWATCH_DATA (needs internet)."""
    import wfdb

    target = Path(_settings().data_dir) / database
    target.mkdir(parents=True, exist_ok=True)
    click.echo(f"downloading {database} from PhysioNet into {target} ...")
    wfdb.dl_database(database, dl_dir=str(target))
    click.echo("done")


def _report_options(f: Callable[..., None]) -> Callable[..., None]:
    """``--json`` and ``--markdown`` of the ``evaluate`` commands."""
    f = click.option("--markdown", "md_out", type=click.Path(path_type=Path), default=None,
                     help="Also write the markdown tables here.")(f)  # fmt: skip
    return click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
                        help="Write the figures as JSON here.")(f)  # fmt: skip


def _emit_report(text: str, result: Any, *, json_out: Path | None, md_out: Path | None) -> None:
    """Print an evaluation's markdown and write it and the JSON result where asked."""
    click.echo(text)
    for out, content in ((md_out, text + "\n"), (json_out, json.dumps(result, indent=1))):
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(content)


@main.group()
def evaluate() -> None:
    """Score the detectors against reference annotations."""


@evaluate.command("qrs")
@click.option("--records", default="", help="Comma-separated MIT-BIH records (default: all 48).")
@_report_options
@click.option(
    "--peers/--no-peers",
    default=False,
    help="Also score wfdb's XQRS and NeuroKit2 (needs the 'bench' extra).",
)
@click.option(
    "--noise/--no-noise",
    default=False,
    help="Also run the noise stress test (24 to -6 dB, NST method).",
)
@click.option(
    "--noise-records",
    default="118,119",
    help="Records of the noise stress test (default: 118,119, as the NST database).",
)
@click.option(
    "--noise-kind",
    type=click.Choice(["em", "ma", "bw", "mixed"]),
    default="em",
    help="Noise of the stress test (default: electrode motion, as NST 118e/119e).",
)
def evaluate_qrs(
    records: str, json_out: Path | None, md_out: Path | None, peers: bool, noise: bool,
    noise_records: str, noise_kind: str,
) -> None:  # fmt: skip
    """Beat-by-beat EC57 scoring of QRS detection on MIT-BIH."""
    from cardiowatch.evaluate_qrs import markdown, run_evaluation

    settings = _settings()
    data_dir = Path(settings.data_dir) / "mitdb"
    if not (data_dir / "RECORDS").exists():
        raise click.UsageError(
            f"no MIT-BIH in {data_dir}: set CARDIOWATCH_DATA or run 'cardiowatch data fetch mitdb'"
        )
    names = _names(records) or (data_dir / "RECORDS").read_text().split()
    with Progress(transient=True) as progress:
        result = run_evaluation(
            data_dir, names, peers=peers, noise_records=_names(noise_records) if noise else [],
            noise_kind=noise_kind, progress=progress,
        )  # fmt: skip
    text = markdown(result)
    click.echo(text)
    if md_out is not None:
        md_out.parent.mkdir(parents=True, exist_ok=True)
        md_out.write_text(text + "\n")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=1))


def _names(csv: str) -> list[str]:
    return [r.strip() for r in csv.split(",") if r.strip()]


def _mitdb(settings: Settings) -> Path:
    return _database(settings, "mitdb")


def _database(settings: Settings, name: str) -> Path:
    """``CARDIOWATCH_DATA/<name>``, which must hold a WFDB ``RECORDS`` list."""
    data_dir = Path(settings.data_dir) / name
    if not (data_dir / "RECORDS").exists():
        fetch = f"run 'cardiowatch data fetch {name}'" if name in FETCHABLE else "download it"
        raise click.UsageError(f"no {name} in {data_dir}: set CARDIOWATCH_DATA or {fetch}")
    return data_dir


@evaluate.command("beats")
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Artifact to score (default: CARDIOWATCH_BEATS_MODEL).",
)
@_report_options
@click.option(
    "--png",
    "png_out",
    type=click.Path(path_type=Path),
    default=None,
    help="Also plot the confusion matrix here.",
)
def evaluate_beats(
    model_path: Path | None, json_out: Path | None, md_out: Path | None, png_out: Path | None
) -> None:  # fmt: skip
    """AAMI beat classes on DS2 (inter-patient): per-class Se, +P, F1, accuracy, confusion."""
    from cardiowatch.beats_data import DS2
    from cardiowatch.evaluate_beats import markdown, plot_confusion, run_evaluation

    settings = _settings()
    path = model_path or Path(settings.beats_model)
    with Progress(transient=True) as progress:
        task = progress.add_task("DS2 beats", total=len(DS2))
        result = run_evaluation(
            _mitdb(settings), Path(settings.cache_dir), path,
            on_record=lambda _: progress.advance(task),
        )  # fmt: skip
    _emit_report(markdown(result), result, json_out=json_out, md_out=md_out)
    if png_out is not None:
        plot_confusion(result, png_out)


@evaluate.command("pcg")
@_report_options
@click.option(
    "--png",
    "png_out",
    type=click.Path(path_type=Path),
    default=None,
    help="Also plot PASCAL's 5-class confusion matrix here.",
)
@click.option("--threads", type=int, default=1, help="torch CPU threads.")
def evaluate_pcg(
    json_out: Path | None, md_out: Path | None, png_out: Path | None, threads: int
) -> None:
    """Leave-one-database-out heart-sound scores, PASCAL murmur/artifact, S1/S2 timing."""
    from cardiowatch.evaluate_pcg import markdown, plot_confusion, run_evaluation

    settings = _settings()
    with Progress() as progress:
        task = progress.add_task("trainings (4 held-out databases, 5 PASCAL folds)", total=9)
        result = run_evaluation(
            Path(settings.data_dir), Path(settings.cache_dir),
            threads=threads, progress=progress,
            on_fold=lambda _: progress.advance(task),
        )  # fmt: skip
    _emit_report(markdown(result), result, json_out=json_out, md_out=md_out)
    if png_out is not None:
        plot_confusion(result, png_out)


@evaluate.command("alarms")
@click.option(
    "--database",
    default="mitdb",
    show_default=True,
    help="WFDB database under CARDIOWATCH_DATA whose rhythm annotations score the alarms "
    "(mitdb, afdb, or any with MIT-BIH-style '+' rhythm annotations).",
)
@click.option(
    "--records",
    default="",
    help="Comma-separated records (default: every record of the database that has signals).",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Beat classifier (default: CARDIOWATCH_BEATS_MODEL).",
)
@_report_options
def evaluate_alarms(
    database: str, records: str, model_path: Path | None, json_out: Path | None,
    md_out: Path | None,
) -> None:  # fmt: skip
    """Rhythm alarms by episode against a database's rhythm annotations (offline twin)."""
    from cardiowatch.evaluate_alarms import markdown, records_with_signals, run_evaluation

    settings = _settings()
    data_dir = _database(settings, database)
    names = _names(records) or records_with_signals(data_dir)
    path = model_path or Path(settings.beats_model)
    with Progress(transient=True) as progress:
        task = progress.add_task("records", total=len(names))
        result = run_evaluation(
            data_dir, names, path, on_record=lambda _: progress.advance(task)
        )  # fmt: skip
    _emit_report(markdown(result), result, json_out=json_out, md_out=md_out)


@main.group()
def train() -> None:
    """Train models (on the CPU)."""


@train.command("beats")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the artifact (default: CARDIOWATCH_BEATS_MODEL).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of initialisation and shuffling: one training run (default for --select: 0).",
)
@click.option(
    "--seeds",
    default=None,
    help="Comma-separated seeds: train once per seed and write every seed's fold networks as "
    "one ensemble (default, with neither option: the shipped seeds 0,5 for the default "
    "variant, 0 for another).",
)
@click.option(
    "--teachers",
    default=None,
    help="For a distilled variant: its two teacher artifacts, comma-separated (train beats "
    "outputs of the teacher variant with seeds S and S+5); default: train them first.",
)
@click.option("--threads", type=int, default=2, help="torch CPU threads.")
@click.option("--variant", default=None, help="Training variant (default: the selected one).")
@click.option(
    "--select",
    "select_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Compare every variant by DS1 cross-validation; write DIR/<variant>.cwm and "
    "DIR/selection.json (nothing is published).",
)
def train_beats(
    out: Path | None,
    seed: int | None,
    seeds: str | None,
    teachers: str | None,
    threads: int,
    variant: str | None,
    select_dir: Path | None,
) -> None:
    """Train the AAMI beat classifier on DS1 (4 patient folds inside DS1; DS2 unused)."""
    from dataclasses import replace

    from cardiowatch.train_beats import (
        DEFAULT_SEEDS,
        DEFAULT_VARIANT,
        TEACHERS,
        VARIANTS,
        run_selection,
        run_training,
    )

    settings = _settings()
    name = variant or DEFAULT_VARIANT
    if name not in VARIANTS:
        raise click.BadParameter(f"one of {', '.join(VARIANTS)}", param_hint="--variant")
    if seeds is not None and seed is not None:
        raise click.BadParameter("give --seed or --seeds, not both", param_hint="--seeds")
    try:
        seed_list = [int(s) for s in seeds.split(",")] if seeds is not None else []
    except ValueError:
        raise click.BadParameter("comma-separated integers", param_hint="--seeds") from None
    if seeds is not None and (not seed_list or len(set(seed_list)) != len(seed_list)):
        raise click.BadParameter("each seed once", param_hint="--seeds")
    if not seed_list:
        default = list(DEFAULT_SEEDS) if name == DEFAULT_VARIANT else [0]
        seed_list = [seed] if seed is not None else default
    teacher_paths = [Path(s) for s in teachers.split(",")] if teachers is not None else None
    if teacher_paths is not None and (name not in TEACHERS or len(teacher_paths) != 2):
        raise click.BadParameter("two artifacts, for a distilled variant", param_hint="--teachers")
    with Progress() as progress:
        if select_dir is not None:
            summary = run_selection(
                _mitdb(settings), Path(settings.cache_dir), select_dir, seed=seed_list[0],
                threads=threads, progress=progress,
            )  # fmt: skip
            for v, r in summary["variants"].items():
                s = r["ds1_out_of_fold"]["with_bias"]
                click.echo(
                    f"{v}: DS1 out-of-fold score {s['all']['score']} (F1 S {s['S']['f1']} "
                    f"V {s['V']['f1']}, accuracy {s['all']['accuracy']})"
                )
            click.echo(f"selected: {summary['selected']}")
            return
        target = out or Path(settings.beats_model)
        config = replace(VARIANTS[name], seed=seed_list[0], threads=threads)
        result = run_training(
            _mitdb(settings), Path(settings.cache_dir), target, config=config, variant=name,
            seeds=seed_list, teacher_artifacts=teacher_paths, progress=progress,
        )  # fmt: skip
    click.echo(json.dumps(result, indent=1))


@train.command("pcg")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the artifact (default: CARDIOWATCH_PCG_MODEL).",
)
@click.option("--seed", type=int, default=0, help="Seed of initialisation and shuffling.")
@click.option("--threads", type=int, default=1, help="torch CPU threads.")
def train_pcg(out: Path | None, seed: int, threads: int) -> None:
    """Train the heart-sound window classifier on PhysioNet 2016 b, c, d and PASCAL."""
    from cardiowatch.train_pcg import candidate, run_training

    settings = _settings()
    target = out or Path(settings.pcg_model)
    spec, config = candidate(seed=seed, threads=threads)
    with Progress() as progress:
        result = run_training(
            Path(settings.data_dir), Path(settings.cache_dir), target,
            config=config, spec=spec, progress=progress,
        )  # fmt: skip
    click.echo(json.dumps(result, indent=1))


@main.group()
def models() -> None:
    """The model registry in Redis."""


@models.command("publish")
@click.argument("name", type=click.Choice(["beats", "pcg"]))
@click.argument("path", type=click.Path(path_type=Path, exists=True))
def models_publish(name: str, path: Path) -> None:
    """Make the artifact at PATH the current NAME model of every worker (hot swap)."""
    import redis

    from streams.model_registry import publish_model

    settings = _settings()
    if not settings.redis_url:
        raise click.UsageError("set CARDIOWATCH_REDIS_URL")
    client = redis.Redis.from_url(settings.redis_url)
    try:
        version = publish_model(client, settings.redis_key_prefix, name, path.read_bytes())
    except ValueError as exc:
        raise click.UsageError(f"{path}: {exc}") from None
    finally:
        client.close()
    click.echo(f"{name} -> {version}")


def _add_api_commands() -> None:
    from cardiowatch.api.admin import api_cmd, tokens, wards

    for command in (api_cmd, tokens, wards):
        main.add_command(command)


_add_api_commands()


@main.command()
@click.option("--patients", type=int, default=100, help="Virtual patients (MIT-BIH replays).")
@click.option(
    "--duration", "duration_s", type=float, default=60.0, help="Seconds of signal per patient."
)
@click.option("--speed", type=float, default=1.0, help="1 = real time.")
@click.option(
    "--workers",
    type=int,
    default=1,
    help="Worker processes to start (0 = use the workers already running).",
)
@click.option(
    "--warmup",
    "warmup_s",
    type=float,
    default=10.0,
    help="Seconds not counted in latency and lag (consumer-group join).",
)
@click.option(
    "--kill-worker-at",
    "kill_at_s",
    type=float,
    default=None,
    help="SIGKILL one worker this many seconds in (needs --workers >= 2); "
    "reports the recovery time and checks that nothing was lost.",
)
@click.option(
    "--verify/--no-verify",
    default=None,
    help="Compare every patient's beats and alerts with the offline twin "
    "(default: on with --kill-worker-at).",
)
@click.option(
    "--alarm-patients",
    type=int,
    default=None,
    help="How many of the patients are synthetic, with an asystole and a tachycardia "
    "(default: 1 in 20, at most 10).",
)
@click.option(
    "--find-capacity",
    is_flag=True,
    help="Search the largest --patients with bounded lag and p99 < 1 s.",
)
@click.option(
    "--compute-limit/--no-compute-limit",
    default=None,
    help="Also time the stage code in a tight loop, no broker (default: with --find-capacity).",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None)
@click.option("--png", "png_out", type=click.Path(path_type=Path), default=None)
@click.option(
    "--wait-for-group/--no-wait-for-group",
    default=True,
    help="Start the load once the workers' consumer group has settled (default).",
)
@click.option(
    "--log-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep the logs of the workers (and embedded services) here.",
)
def loadtest(
    patients: int, duration_s: float, speed: float, workers: int, warmup_s: float,
    kill_at_s: float | None, verify: bool | None, alarm_patients: int | None, find_capacity: bool,
    compute_limit: bool | None, json_out: Path | None, png_out: Path | None,
    wait_for_group: bool, log_dir: Path | None,
) -> None:  # fmt: skip
    """Replay N patients against the stack and report throughput, lag, latency, CPU, alerts.

    Uses CARDIOWATCH_KAFKA_URL / CARDIOWATCH_REDIS_URL when set, else starts an embedded
    broker and Redis for the run. Results: a summary on stdout, --json (everything, with the
    per-second timeline) and --png (throughput, lag, p99 and CPU over time).
    """
    from cardiowatch import loadtest as lt

    settings = _settings()
    if patients < 1 or duration_s <= 0 or speed <= 0 or workers < 0:
        raise click.BadParameter("--patients >= 1, --duration > 0, --speed > 0, --workers >= 0")
    config = lt.LoadtestConfig(
        patients=patients, duration_s=duration_s, speed=speed, workers=workers,
        warmup_s=warmup_s, kill_worker_at_s=kill_at_s,
        verify=verify if verify is not None else kill_at_s is not None,
        alarm_patients=alarm_patients, wait_for_group=wait_for_group,
    )  # fmt: skip
    report: dict[str, object] = {}
    if compute_limit or (compute_limit is None and find_capacity):
        click.echo("timing the stage code in a tight loop (no broker)...", err=True)
        report["compute_limit"] = lt.compute_limit(settings, config.records)
    if find_capacity:
        report["capacity"] = lt.find_capacity(
            settings, config, start=patients, log=lambda s: click.echo(s, err=True)
        )
    else:
        try:
            with lt.LiveView() as view:
                result = lt.run_loadtest(settings, config, on_sample=view.update, log_dir=log_dir)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        report |= result
        if png_out is not None:
            lt.write_png(result, png_out)
    summary = {k: v for k, v in report.items() if k != "timeline"}
    click.echo(json.dumps(summary, indent=2))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2))
