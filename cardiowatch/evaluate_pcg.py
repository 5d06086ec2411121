"""``cardiowatch evaluate pcg``: held-out scoring of the heart-sound pipeline.

* Leave one database out over PhysioNet 2016 training-b, -c, -d and PASCAL: train on the
  other three, score the held-out one per recording (Se, Sp, MAcc = (Se + Sp) / 2 with the
  recording decision's probability at 0.5; PASCAL artifacts are not scored as normal/abnormal).
* PASCAL murmur and artifact: with PASCAL held out no murmur or artifact label is left to learn
  from, so these are scored by 5-fold cross-validation on PASCAL grouped by subject (set B) or
  recording (set A), every PhysioNet recording in every training fold: normal-vs-murmur AUROC,
  artifact recall (mean ``poor_quality`` >= 0.5) and the 5-class confusion matrix.
* The quality rule (:mod:`models.pcg._quality`): each fold's threshold is chosen on that
  fold's training recordings alone (none, so no rule, when they hold no artifact label: the
  leave-PASCAL-out fold); the same figures without the rule are reported beside them
  (``databases_model_only``, ``pascal_model_only``).
* S1/S2 timing against ``set_a_timing.csv`` (F1 within 60 ms, one-to-one, detections counted
  between the first and last reference sound of each file +- 60 ms; no model involved).

Each held-out database's candidate configuration (:data:`FOLD_VARIANTS`) was chosen on inner
splits that never include that database; nothing is tuned on a test fold.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from cardiowatch.pcg_data import DATABASES, Recording, WindowSet
from cardiowatch.train_pcg import CANDIDATES, SHIPPED_VARIANT, candidate, fit, load_all
from models.pcg import (
    HEADS,
    PASCAL_CLASSES,
    PcgMonitor,
    PcgNet,
    WindowSpec,
    choose_hf_threshold,
    net_logits,
    recording_decision,
    with_quality_rule,
)
from simulators.audio import load_audio

PASCAL_FOLDS = 5
MATCH_S = 0.06
#: The candidate (``cardiowatch.train_pcg.CANDIDATES``) each outer fold trains, chosen by that
#: fold's inner splits alone (``benchmarks/pcg_inner_select.py``: the mean MAcc over the three
#: inner folds that leave the outer database out of training and testing). The PASCAL 5-fold CV
#: uses the ``pascal`` fold's candidate, chosen without PASCAL.
FOLD_VARIANTS: dict[str, str] = {
    "training-b": "running-big",
    "training-c": "running",
    "training-d": "running-big-cycle",
    "pascal": "running-big-cycle-norm",
}


def _outputs(
    net: PcgNet, features: npt.NDArray[np.float32], cycle: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    z = net_logits(net, features, cycle)
    heads = special.expit(z[:, : len(HEADS)])  # no overflow warning for large |z|
    cls = np.exp(z[:, len(HEADS) :] - z[:, len(HEADS) :].max(axis=1, keepdims=True))
    cls /= cls.sum(axis=1, keepdims=True)
    return np.asarray(np.concatenate([heads, cls], axis=1), dtype=np.float32)


def _per_recording(
    net: PcgNet, ws: WindowSet, test: Sequence[int], hf_threshold: float | None = None
) -> dict[int, npt.NDArray[np.float32]]:
    """Window outputs ``(n_windows, 3 + 5)`` of each test recording (empty when too short),
    ``poor_quality`` raised by the quality rule at ``hf_threshold`` (``None``: no rule)."""
    mask = np.isin(ws.rec, np.asarray(test))
    out = _outputs(net, ws.features[mask], ws.cycle[mask])
    out[:, : len(HEADS)] = with_quality_rule(out[:, : len(HEADS)], ws.hf_share[mask], hf_threshold)
    recs = ws.rec[mask]
    width = len(HEADS) + len(PASCAL_CLASSES)
    return {i: out[recs == i] if (recs == i).any() else np.zeros((0, width), np.float32)
            for i in test}  # fmt: skip


def fold_hf_threshold(
    recordings: Sequence[Recording], ws: WindowSet, train: Sequence[int]
) -> float | None:
    """The quality rule's threshold chosen on the training recordings of a fold alone
    (``None`` when they hold no artifact label: no rule)."""
    shares = [ws.hf_share[ws.rec == i] for i in train]
    return choose_hf_threshold(shares, [recordings[i].poor_quality for i in train])


def _pct(num: int, den: int) -> float | None:
    return None if den == 0 else round(100.0 * num / den, 1)


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half).

    >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return round(float(greater / (len(pos) * len(neg))), 4)


def score_database(
    recordings: Sequence[Recording], outputs: dict[int, npt.NDArray[np.float32]]
) -> dict[str, Any]:
    """Se, Sp, MAcc (percent) of the recording decisions; too-short recordings count as normal."""
    tp = fn = tn = fp = unsure = short = 0
    for i, out in outputs.items():
        r = recordings[i]
        if r.abnormal < 0:
            continue
        d = recording_decision(out[:, : len(HEADS)])
        p = d["abnormal_probability"]
        short += p is None
        unsure += d["decision"] == "unsure"
        predicted = p is not None and p >= 0.5
        if r.abnormal == 1:
            tp, fn = tp + predicted, fn + (not predicted)
        else:
            fp, tn = fp + predicted, tn + (not predicted)
    se, sp = _pct(tp, tp + fn), _pct(tn, tn + fp)
    macc = None if se is None or sp is None else round((se + sp) / 2.0, 1)
    return {"se": se, "sp": sp, "macc": macc, "abnormal": tp + fn, "normal": tn + fp,
            "unsure": unsure, "too_short": short}  # fmt: skip


def _folds(recordings: Sequence[Recording], idx: Sequence[int], k: int) -> list[list[int]]:
    """``k`` folds of ``idx`` grouped by ``Recording.group``, deterministic."""
    groups = sorted({recordings[i].group for i in idx})
    rng = np.random.default_rng(0)
    order = [groups[j] for j in rng.permutation(len(groups))]
    fold_of = {g: n % k for n, g in enumerate(order)}
    folds: list[list[int]] = [[] for _ in range(k)]
    for i in idx:
        folds[fold_of[recordings[i].group]].append(i)
    return folds


def score_pascal(
    recordings: Sequence[Recording], outputs: dict[int, npt.NDArray[np.float32]]
) -> dict[str, Any]:
    """Murmur AUROC, artifact recall and the 5-class confusion over PASCAL recordings."""
    mur_s, mur_y = [], []
    art_hit = art_n = clean_flagged = clean_n = 0
    cm = np.zeros((len(PASCAL_CLASSES), len(PASCAL_CLASSES)), dtype=np.int64)
    for i, out in outputs.items():
        r = recordings[i]
        if len(out) == 0:
            continue
        poor = float(out[:, 2].mean())
        if r.murmur >= 0:
            usable = out[out[:, 2] < 0.5]
            mur_s.append(float((usable if len(usable) else out)[:, 1].mean()))
            mur_y.append(r.murmur)
        if r.poor_quality == 1:
            art_n += 1
            art_hit += poor >= 0.5
        else:
            clean_n += 1
            clean_flagged += poor >= 0.5
        cm[r.pascal_class, int(out[:, len(HEADS) :].mean(axis=0).argmax())] += 1
    return {
        "murmur_auroc": auroc(mur_s, mur_y),
        "artifact_recall": _pct(art_hit, art_n),
        "non_artifact_flagged": _pct(clean_flagged, clean_n),
        "confusion": {"labels": list(PASCAL_CLASSES), "rows_reference": cm.tolist()},
        "accuracy_5class": _pct(int(np.trace(cm)), int(cm.sum())),
    }


def _match(ref: Sequence[int], det: Sequence[int], tol: int) -> int:
    """One-to-one matches within ``tol`` samples (greedy in time order)."""
    used: set[int] = set()
    hits = 0
    for r in ref:
        best = None
        for j, d in enumerate(det):
            if (
                j not in used
                and abs(d - r) <= tol
                and (best is None or abs(d - r) < abs(det[best] - r))
            ):
                best = j
        if best is not None:
            used.add(best)
            hits += 1
    return hits


def timing_files(data_dir: Path) -> list[str]:
    """The file names of ``set_a_timing.csv``, sorted."""
    with (data_dir / "pascal" / "set_a_timing.csv").open(newline="") as f:
        return sorted({row["fname"] for row in csv.DictReader(f)})


def score_segmentation(
    data_dir: Path, spec: WindowSpec, *, files: Sequence[str] | None = None
) -> dict[str, Any]:
    """S1/S2 F1 (percent) within 60 ms against ``set_a_timing.csv`` (``files``: a subset)."""
    refs: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"S1": [], "S2": []})
    with (data_dir / "pascal" / "set_a_timing.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if files is None or row["fname"] in files:
                refs[row["fname"]][row["sound"]].append(int(row["location"]))
    counts = {s: [0, 0, 0] for s in ("S1", "S2")}  # hits, references, detections
    for fname, ref in sorted(refs.items()):
        samples, fs_hz = load_audio(data_dir / "pascal" / fname)
        monitor = PcgMonitor(fs_hz, spec)
        sounds = monitor.process(samples.astype(np.float64) / 32768.0, None).sounds
        sounds += monitor.flush(None).sounds
        scale = fs_hz / spec.fs_hz
        tol = round(MATCH_S * fs_hz)
        lo = min(ref["S1"] + ref["S2"]) - tol
        hi = max(ref["S1"] + ref["S2"]) + tol
        for s in ("S1", "S2"):
            det = [round(e.sample_index * scale) for e in sounds if e.sound == s]
            det = [d for d in det if lo <= d <= hi]
            c = counts[s]
            c[0] += _match(sorted(ref[s]), det, tol)
            c[1] += len(ref[s])
            c[2] += len(det)
    out: dict[str, Any] = {"files": len(refs)}
    for s, (hits, n_ref, n_det) in counts.items():
        se, ppv = _pct(hits, n_ref), _pct(hits, n_det)
        f1 = None if not se or not ppv else round(2 * se * ppv / (se + ppv), 1)
        out[f"{s.lower()}_f1"] = f1
        out[f"{s.lower()}_se"], out[f"{s.lower()}_ppv"] = se, ppv
    return out


def run_evaluation(
    data_dir: Path, cache_dir: Path, *, threads: int = 1,
    variants: Mapping[str, str] | None = None, progress: Any = None,
    on_fold: Callable[[str], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Every figure of the module docstring, as the JSON ``evaluate pcg`` writes.

    ``variants``: the candidate of each held-out database (default :data:`FOLD_VARIANTS`).
    """
    variants = dict(variants or FOLD_VARIANTS)
    loaded: dict[str, tuple[list[Recording], WindowSet]] = {}

    def data(name: str) -> tuple[list[Recording], WindowSet]:
        spec = CANDIDATES[name][0]
        key = json.dumps(spec.to_dict(), sort_keys=True)
        if key not in loaded:
            loaded[key] = load_all(data_dir, cache_dir, spec, progress)
        return loaded[key]

    result: dict[str, Any] = {"databases": {}, "databases_model_only": {}, "hf_thresholds": {},
                              "variants": variants,
                              "candidates": {
        name: {"spec": spec.to_dict(), "config": config.to_dict()}
        for name, (spec, config) in CANDIDATES.items() if name in variants.values()
    }}  # fmt: skip
    for db in DATABASES:
        recordings, ws = data(variants[db])
        config = candidate(variants[db], threads=threads)[1]
        test = [i for i, r in enumerate(recordings) if r.db == db]
        train = [i for i, r in enumerate(recordings) if r.db != db]
        net = fit(recordings, ws, train, config)
        threshold = fold_hf_threshold(recordings, ws, train)
        result["hf_thresholds"][db] = threshold
        result["databases"][db] = score_database(
            recordings, _per_recording(net, ws, test, threshold)
        )
        result["databases_model_only"][db] = score_database(
            recordings, _per_recording(net, ws, test)
        )
        if on_fold is not None:
            on_fold(f"held out {db}")
    recordings, ws = data(variants["pascal"])
    config = candidate(variants["pascal"], threads=threads)[1]
    pascal = [i for i, r in enumerate(recordings) if r.db == "pascal"]
    others = [i for i, r in enumerate(recordings) if r.db != "pascal"]
    outputs: dict[int, npt.NDArray[np.float32]] = {}
    model_only: dict[int, npt.NDArray[np.float32]] = {}
    for k, fold in enumerate(_folds(recordings, pascal, PASCAL_FOLDS)):
        held = set(fold)
        train = others + [i for i in pascal if i not in held]
        net = fit(recordings, ws, train, config)
        threshold = fold_hf_threshold(recordings, ws, train)
        result["hf_thresholds"][f"pascal fold {k}"] = threshold
        outputs.update(_per_recording(net, ws, fold, threshold))
        model_only.update(_per_recording(net, ws, fold))
        if on_fold is not None:
            on_fold("pascal fold")
    result["pascal"] = score_pascal(recordings, outputs)
    result["pascal_model_only"] = score_pascal(recordings, model_only)
    result["pascal_cv_abnormal"] = score_database(recordings, outputs)
    result["segmentation"] = score_segmentation(data_dir, CANDIDATES[SHIPPED_VARIANT][0])
    return result


def markdown(result: dict[str, Any]) -> str:
    """The tables of ``BENCHMARKS.md``."""

    def f(v: Any) -> str:
        return "-" if v is None else str(v)

    lines = [
        f"Quality-rule thresholds per fold: {result.get('hf_thresholds')}",
        "",
        "| held-out database | abnormal | normal | Se % | Sp % | MAcc % | unsure | too short |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for db, r in result["databases"].items():
        lines.append(f"| {db} | {r['abnormal']} | {r['normal']} | {f(r['se'])} | {f(r['sp'])} | "
                     f"{f(r['macc'])} | {r['unsure']} | {r['too_short']} |")  # fmt: skip
    p = result["pascal"]
    po = result.get("pascal_model_only", p)
    cv = result["pascal_cv_abnormal"]
    s = result["segmentation"]
    lines += [
        "",
        f"PASCAL, {PASCAL_FOLDS}-fold CV grouped by subject: murmur AUROC {f(p['murmur_auroc'])}, "
        f"artifact recall {f(p['artifact_recall'])} %, non-artifacts flagged "
        f"{f(p['non_artifact_flagged'])} %, 5-class accuracy {f(p['accuracy_5class'])} %, "
        f"abnormal Se/Sp/MAcc {f(cv['se'])}/{f(cv['sp'])}/{f(cv['macc'])} %. Without the "
        f"quality rule: murmur AUROC {f(po['murmur_auroc'])}, artifact recall "
        f"{f(po['artifact_recall'])} %, non-artifacts flagged {f(po['non_artifact_flagged'])} %.",
        "",
        f"S1/S2 on set_a_timing ({s['files']} files, 60 ms): S1 F1 {f(s['s1_f1'])} % "
        f"(Se {f(s['s1_se'])}, +P {f(s['s1_ppv'])}), S2 F1 {f(s['s2_f1'])} % "
        f"(Se {f(s['s2_se'])}, +P {f(s['s2_ppv'])}).",
        "",
        "| reference \\ predicted | " + " | ".join(p["confusion"]["labels"]) + " |",
        "|---" * (len(p["confusion"]["labels"]) + 1) + "|",
    ]
    for label, row in zip(p["confusion"]["labels"], p["confusion"]["rows_reference"], strict=True):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def plot_confusion(result: dict[str, Any], path: Path) -> None:
    """The PASCAL 5-class confusion matrix as a PNG (row-normalised colours, counts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = result["pascal"]["confusion"]
    labels = conf["labels"]
    cm = np.asarray(conf["rows_reference"], dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1.0)
    fig, ax = plt.subplots(figsize=(5.0, 4.2), dpi=120)
    ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(len(labels)):
        for j in range(len(labels)):
            color = "white" if norm[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title("PASCAL, 5-fold CV by subject", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
