"""``cardiowatch evaluate beats``: the beat classifier scored on DS2 (inter-patient).

The DS2 beats are the detector's R peaks of each record (run in 1 s chunks as the worker
runs it) that lie within 150 ms of a reference beat of an AAMI class; each is labelled by the
artifact with the serving features, and scored against its reference class. Reference beats
the detector missed, and detections without a reference beat, are reported beside the table
(they are not in the confusion matrix).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cardiowatch.beats_data import DS2, load_beats
from models.beats import AAMI_CLASSES, BeatClassifier, class_scores


def run_evaluation(
    data_dir: Path,
    cache_dir: Path,
    model_path: Path,
    *,
    on_record: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score ``model_path`` on DS2; the JSON document of ``cardiowatch evaluate beats``."""
    data = model_path.read_bytes()
    model = BeatClassifier.from_bytes(data)
    beats = load_beats(data_dir, DS2, model.spec, cache_dir, on_record=on_record)
    pred = model.logits(beats.morph, beats.rr).argmax(axis=1)
    scores = class_scores(beats.y, pred, len(AAMI_CLASSES))
    cm = scores["confusion"]

    def pct(v: float) -> float | None:
        return round(float(v), 2) if np.isfinite(v) else None

    classes = {
        c: {"se": pct(scores["se"][i]), "ppv": pct(scores["ppv"][i]),
            "f1": pct(scores["f1"][i]), "n": int(cm[i].sum())}
        for i, c in enumerate(AAMI_CLASSES)
    }  # fmt: skip
    return {
        "split": "DS2",
        "records": list(DS2),
        "model_version": model.version,
        "accuracy": pct(100.0 * float(np.mean(pred == beats.y))),
        "classes": classes,
        "confusion": {"labels": list(AAMI_CLASSES), "rows_reference": cm.tolist()},
        "beats": len(beats.y),
        "missed_reference_beats": dict(zip(AAMI_CLASSES, beats.missed.tolist(), strict=True)),
        "detections_without_reference": beats.unmatched,
    }


def markdown(result: dict[str, Any]) -> str:
    """Per-class table and confusion matrix as markdown."""

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = [
        f"DS2 ({result['beats']} beats), model `{result['model_version']}`, "
        f"accuracy {f(result['accuracy'])} %",
        "",
        "| class | n | Se % | +P % | F1 % |",
        "|---|---|---|---|---|",
    ]
    for c, r in result["classes"].items():
        lines.append(f"| {c} | {r['n']} | {f(r['se'])} | {f(r['ppv'])} | {f(r['f1'])} |")
    labels = result["confusion"]["labels"]
    lines += ["", "| reference \\ predicted | " + " | ".join(labels) + " |",
              "|---" * (len(labels) + 1) + "|"]  # fmt: skip
    for label, row in zip(labels, result["confusion"]["rows_reference"], strict=True):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def plot_confusion(result: dict[str, Any], path: Path) -> None:
    """Write the confusion matrix (row-normalised colours, counts printed) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = result["confusion"]["labels"]
    cm = np.asarray(result["confusion"]["rows_reference"], dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1.0)
    fig, ax = plt.subplots(figsize=(4.6, 4.0), dpi=120)
    ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(len(labels)):
        for j in range(len(labels)):
            color = "white" if norm[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(f"DS2, accuracy {result['accuracy']} %", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
