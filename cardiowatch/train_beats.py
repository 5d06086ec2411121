"""``cardiowatch train beats``: train the beat classifier on DS1 only.

Selection protocol (DS2 is never read here; ``cardiowatch evaluate beats`` scores on it):

1. Build (or read from the cache) the DS1 beats: detector R peaks, serving features, AAMI labels.
2. Patient-grouped cross-validation inside DS1 (:data:`~cardiowatch.beats_data.DS1_FOLDS`,
   four folds): one network per fold, trained on the other three folds for ``cv_epochs``
   epochs while its own fold is scored after each epoch. ONE epoch count is chosen from the
   mean curve over the four folds (at least ``min_epochs``); every network keeps its weights
   of that epoch and scores its own fold with them (out-of-fold logits).
3. Logit offsets for S and V chosen on the out-of-fold logits of all DS1 beats.
4. The artifact is the ensemble of the four fold networks (mean logits) plus those offsets,
   with the out-of-fold DS1 figures in its metadata. With several seeds (``--seeds``) steps
   2-3 run once per seed and the artifact holds every seed's fold networks.

Training variants (:data:`VARIANTS`) are compared by step 2-3's out-of-fold score only
(``cardiowatch train beats --select DIR`` trains each with one seed); :data:`DEFAULT_VARIANT`
and :data:`DEFAULT_SEEDS` are the candidate that cleared the model card's rule (mean score over
five seed replicates, and inference throughput).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from rich.progress import Progress

from cardiowatch.beats_data import DS1, DS1_FOLDS, load_beats
from models.beats import (
    ALL_RR_FEATURES,
    RR_FEATURES,
    SHIPPED_RR_FEATURES,
    BeatEnsemble,
    CrossValResult,
    FeatureSpec,
    TrainConfig,
    artifact_version,
    cross_validate,
    decode_artifact,
    encode_artifact,
    fit_logit_bias,
    scores_table,
    seed_ensemble,
)

#: Synthetic premature S beats from N beats of a regular rhythm (the recipe of the last three).
_PREMATURE_REGULAR = TrainConfig(
    epochs=20, patience=5, rr_skip=True, premature_s=0.02, premature_max_irregularity=0.1
)
#: Training variants compared on DS1 out-of-fold scores (never on DS2).
VARIANTS: dict[str, TrainConfig] = {
    "base": TrainConfig(epochs=20, patience=5),
    "augment": TrainConfig(epochs=20, patience=5, amplitude_jitter=0.15, baseline_jitter=0.1),
    "regularised": TrainConfig(epochs=20, patience=5, lr=1e-3, weight_decay=1e-3),
    "template": TrainConfig(epochs=20, patience=5),
    "template_w1": TrainConfig(epochs=20, patience=5, class_weight_power=1.0),
    "template_wide": TrainConfig(epochs=20, patience=5, rr_skip=True),
    "rhythm_wide": TrainConfig(epochs=20, patience=5, rr_skip=True),
    "sinus_wide": TrainConfig(epochs=20, patience=5, rr_skip=True),
    "rhythm_avg3": TrainConfig(epochs=20, patience=5, rr_skip=True, average_epochs=3),
    "premature_s": TrainConfig(epochs=20, patience=5, rr_skip=True, premature_s=0.02),
    "premature_s_regular": _PREMATURE_REGULAR,
    "premature_s_slim": replace(_PREMATURE_REGULAR, channels=(4, 8, 8)),
    "premature_s_distilled": replace(
        _PREMATURE_REGULAR, distill_weight=0.5, distill_temperature=2.0
    ),
}
#: Distilled variants: the variant their teachers are and the seed offset of the second
#: teacher (seed ``s``'s student learns from that variant's fold networks of ``s`` and
#: ``s + offset``, each trained on the student's own training folds).
TEACHERS: dict[str, tuple[str, int]] = {"premature_s_distilled": ("premature_s_regular", 5)}
#: RR feature columns of each variant: the first three variants predate the template and
#: P-wave columns, the ``template*`` ones the two rhythm-context columns; ``sinus_wide`` adds
#: the sinus-reference columns (:data:`~models.beats.SINUS_FEATURES`) to the shipped ones;
#: ``rhythm_avg3`` is ``rhythm_wide`` with each member's weights averaged over 3 epochs;
#: ``premature_s`` is ``rhythm_wide`` with synthetic premature S beats while training,
#: ``premature_s_regular`` the same with only N beats of a regular rhythm converted,
#: ``premature_s_distilled`` that recipe distilled from two of its own seeds (:data:`TEACHERS`),
#: ``premature_s_slim`` that recipe with half the convolution channels.
VARIANT_FEATURES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("base", "augment", "regularised"), RR_FEATURES),
    **dict.fromkeys(("template", "template_w1", "template_wide"), SHIPPED_RR_FEATURES[:-2]),
    "rhythm_wide": SHIPPED_RR_FEATURES,
    "sinus_wide": ALL_RR_FEATURES,
    "rhythm_avg3": SHIPPED_RR_FEATURES,
    "premature_s": SHIPPED_RR_FEATURES,
    "premature_s_regular": SHIPPED_RR_FEATURES,
    "premature_s_distilled": SHIPPED_RR_FEATURES,
    "premature_s_slim": SHIPPED_RR_FEATURES,
}
#: The variant ``cardiowatch train beats`` trains (the candidate that cleared the model card's
#: rule: DS1 out-of-fold score and inference throughput).
DEFAULT_VARIANT = "premature_s_slim"
#: Seeds of the shipped artifact: the default variant trained twice, one 8-network ensemble.
DEFAULT_SEEDS: tuple[int, ...] = (0, 5)


#: :class:`TrainConfig` fields added after the shipped recipe, with their "off" defaults.
LATER_FIELDS: dict[str, Any] = {
    "average_epochs": 1,
    "premature_s": 0.0,
    "premature_max_irregularity": None,
    "distill_weight": 0.0,
    "distill_temperature": 2.0,
    "channels": (8, 16, 16),
}


def config_record(config: TrainConfig) -> dict[str, Any]:
    """``config`` for an artifact's metadata.

    The fields added after the shipped recipe (:data:`LATER_FIELDS`) are left out at their
    defaults, so the artifacts of the recipes that predate them keep their metadata (and
    retrain to the same bytes on the same machine).
    """
    record = asdict(config)
    for name, default in LATER_FIELDS.items():
        if record[name] == default:
            del record[name]
    if config.distill_weight > 0:  # a distilled recipe names its temperature, default or not
        record["distill_temperature"] = config.distill_temperature
    return record


def run_training(
    data_dir: Path,
    cache_dir: Path,
    out: Path,
    *,
    config: TrainConfig | None = None,
    variant: str = DEFAULT_VARIANT,
    seeds: Sequence[int] | None = None,
    teacher_artifacts: Sequence[Path] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Cross-validate on DS1, write the ensemble artifact to ``out``; return the facts.

    With several ``seeds`` the cross-validation runs once per seed and the artifact holds
    every seed's fold networks (seed-major: the members of the first seed, then the next);
    the out-of-fold logits are the mean over seeds, and the logit offsets are fitted on that
    mean, as :mod:`benchmarks.beats_seed_spread` scores a seed ensemble.

    A distilled variant (:data:`TEACHERS`) first trains its teachers, or reads them from
    ``teacher_artifacts`` (``train beats`` outputs of the teacher variant with exactly the
    teacher seeds, checked against their metadata); one seed only.
    """
    config = config or VARIANTS[variant]
    seeds = tuple(seeds) if seeds is not None else (config.seed,)
    if variant in TEACHERS and len(seeds) != 1:
        raise ValueError(f"{variant} is distilled from its teachers: one seed only")
    spec = FeatureSpec(rr_features=VARIANT_FEATURES[variant])
    t0 = time.perf_counter()
    task = progress.add_task("DS1 beats", total=len(DS1)) if progress is not None else None

    def tick(_: str) -> None:
        if progress is not None and task is not None:
            progress.advance(task)

    data = load_beats(data_dir, DS1, spec, cache_dir, on_record=tick)
    t_data = time.perf_counter() - t0
    fold_of_record = {name: k for k, names in enumerate(DS1_FOLDS) for name in names}
    fold = np.asarray([fold_of_record[data.names[i]] for i in data.record], np.int64)

    bars: dict[int, Any] = {}

    def on_epoch(k: int, epoch: int, figures: dict[str, float]) -> None:
        if progress is None:
            return
        if k not in bars:
            total = min(config.cv_epochs, config.epochs)
            bars[k] = progress.add_task(f"{variant} fold {k}", total=total)
        progress.update(
            bars[k],
            advance=1,
            description=f"{variant} fold {k} (val F1 S {figures['val_f1_s']:.1f} "
            f"V {figures['val_f1_v']:.1f})",
        )

    t1 = time.perf_counter()
    teachers, teacher_record = None, None
    if variant in TEACHERS:
        teachers, teacher_record = _teachers(
            variant, seeds[0], (data.morph, data.rr, data.y), fold, spec, config,
            teacher_artifacts,
        )  # fmt: skip
    cvs = []
    for s in seeds:
        bars.clear()  # one set of fold bars per seed
        run_config = replace(config, seed=s)
        cvs.append(cross_validate(spec, (data.morph, data.rr, data.y), fold, run_config,
                                  on_epoch=on_epoch, teachers=teachers))  # fmt: skip
    cv = cvs[0]
    ensemble, oof_logits = seed_ensemble(cvs, data.y)
    bias = ensemble.logit_bias.numpy()
    t_train = time.perf_counter() - t1
    raw = scores_table(data.y, oof_logits.argmax(axis=1))
    corrected = scores_table(data.y, (oof_logits + bias).argmax(axis=1))
    metadata = {
        "trained_on": {"records": list(DS1), "folds": [list(f) for f in DS1_FOLDS],
                       "beats": len(data.y),
                       "class_counts": np.bincount(data.y, minlength=5).tolist()},
        "selection": "patient-grouped 4-fold cross-validation inside DS1; DS2 unused",
        "variant": variant,
        "config": config_record(config),
        "best_epochs": cv.best_epochs,
        "epochs_chosen_from_mean_curve": cv.epoch,
        "ds1_cv_curve": [{k: round(v, 2) for k, v in p.items()} for p in cv.curve],
        "per_fold_best_epochs_not_used": cv.fold_best_epochs,
        "logit_bias": [round(float(b), 2) for b in bias],
        "ds1_out_of_fold": {"raw": raw, "with_bias": corrected},
        "torch": torch.__version__,
        "python": platform.python_version(),
    }  # fmt: skip
    if len(seeds) > 1:
        metadata.update(_seed_records(seeds, cvs, data.y))
    if teacher_record is not None:
        metadata["teachers"] = teacher_record
    blob = encode_artifact(ensemble, spec, metadata=metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    return {
        "artifact": str(out),
        "version": artifact_version(blob),
        "bytes": len(blob),
        "variant": variant,
        "best_epochs": cv.best_epochs,
        "ds1_cv_curve": metadata["ds1_cv_curve"],
        "per_fold_best_epochs_not_used": cv.fold_best_epochs,
        "logit_bias": metadata["logit_bias"],
        "ds1_out_of_fold": metadata["ds1_out_of_fold"],
        "seconds": {"data": round(t_data, 1), "train": round(t_train, 1)},
        **({"seeds": metadata["seeds"]} if len(seeds) > 1 else {}),
    }


def _teachers(
    variant: str,
    seed: int,
    data: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]],
    fold: npt.NDArray[np.int64],
    spec: FeatureSpec,
    config: TrainConfig,
    artifacts: Sequence[Path] | None,
) -> tuple[list[BeatEnsemble], dict[str, Any]]:
    """One teacher per fold for ``variant``'s student of ``seed``, and their record.

    Teacher ``k`` is the mean of the teacher variant's fold-``k`` networks of the teacher
    seeds (no logit offsets): trained on the folds the student ``k`` trains on.
    """
    teacher_variant, offset = TEACHERS[variant]
    seeds = (seed, seed + offset)
    if artifacts is None:
        base = replace(VARIANTS[teacher_variant], threads=config.threads)
        runs = [list(cross_validate(spec, data, fold, replace(base, seed=s)).members)
                for s in seeds]  # fmt: skip
        versions = None
    else:
        runs, versions = [], []
        for path, s in zip(artifacts, seeds, strict=True):
            blob = path.read_bytes()
            header, net = decode_artifact(blob)
            meta = header["metadata"]
            ok = (
                isinstance(net, BeatEnsemble) and len(net.members) == len(DS1_FOLDS)
                and meta.get("variant") == teacher_variant and meta["config"]["seed"] == s
                and meta["trained_on"]["folds"] == [list(f) for f in DS1_FOLDS]
            )  # fmt: skip
            if not ok:
                raise ValueError(f"{path}: not a {teacher_variant} fold ensemble of seed {s}")
            runs.append(list(net.members))  # type: ignore[arg-type]
            versions.append(artifact_version(blob))
    teachers = [BeatEnsemble([run[k] for run in runs]) for k in range(len(DS1_FOLDS))]
    return teachers, {"variant": teacher_variant, "seeds": list(seeds), "versions": versions}


def _seed_records(
    seeds: tuple[int, ...], cvs: list[CrossValResult], y: npt.NDArray[np.int64]
) -> dict[str, Any]:
    """Metadata of a seed ensemble: the seeds, and each seed's own run.

    The top-level fields of the metadata (``best_epochs``, ``ds1_cv_curve``, ...) keep the
    first seed's run, as a single-seed artifact has them; the others are listed here, each
    with its out-of-fold figures alone (offsets fitted to it alone).
    """
    runs = []
    for s, c in zip(seeds, cvs, strict=True):
        alone = c.oof_logits + fit_logit_bias(c.oof_logits, y)
        runs.append({
            "seed": s, "best_epochs": c.best_epochs,
            "epochs_chosen_from_mean_curve": c.epoch,
            "ds1_out_of_fold_alone": scores_table(y, alone.argmax(axis=1))["all"],
        })  # fmt: skip
    return {"seeds": list(seeds), "seed_runs": runs, "members_order": "seed-major"}


def run_selection(
    data_dir: Path,
    cache_dir: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    threads: int = 2,
    progress: Progress | None = None,
    on_variant: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train every variant of :data:`VARIANTS`; rank them by DS1 out-of-fold score.

    Writes ``out_dir/<variant>.cwm`` and ``out_dir/selection.json``.
    """
    results: dict[str, Any] = {}
    for name, config in VARIANTS.items():
        cfg = replace(config, seed=seed, threads=threads)
        results[name] = run_training(
            data_dir, cache_dir, out_dir / f"{name}.cwm", config=cfg, variant=name,
            progress=progress,
        )  # fmt: skip
        if on_variant is not None:
            on_variant(name, results[name])
    best = max(results, key=lambda n: results[n]["ds1_out_of_fold"]["with_bias"]["all"]["score"])
    summary = {"selected": best, "variants": results}
    (out_dir / "selection.json").write_text(json.dumps(summary, indent=1))
    return summary
