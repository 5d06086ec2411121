"""Training noise of the beat classifier: the same recipe trained with several seeds.

Each artifact is one run of ``cardiowatch train beats --seed S`` (one network per DS1 patient
fold). Per artifact the script prints the DS1 out-of-fold figures stored in its metadata
(what ``train beats`` and variant selection see) and, with ``--ds2``, the held-out DS2
figures of ``cardiowatch evaluate beats`` (no selection is made from them: they measure
how much a DS2 figure moves when only the seed changes). Then mean, standard deviation and
range over the artifacts, and the DS1 out-of-fold score of the seed ensembles 0..m-1 (the
members' out-of-fold logits averaged, logit offsets refitted as ``train beats`` does).

Usage::

    for s in 1 2 3 4; do
        cardiowatch train beats --seed $s --threads 1 --out /tmp/seeds/seed$s.cwm
    done
    python benchmarks/beats_seed_spread.py models/artifacts/beats.cwm \
        /tmp/seeds/seed{1,2,3,4}.cwm --ds2

``--groups 2`` also scores consecutive pairs of the artifacts as seed ensembles, the
replicates of a two-seed ensemble recipe (e.g. ``seed0 seed5 seed1 seed6 ...``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cardiowatch.beats_data import DS1, DS1_FOLDS, load_beats
from cardiowatch.evaluate_beats import run_evaluation
from cardiowatch.settings import Settings
from models.beats._features import FeatureSpec
from models.beats._model import BeatEnsemble, BeatNet, decode_artifact, encode_artifact
from models.beats._select import fit_logit_bias, net_logits, scores_table
from models.beats._train import selection_score

COLUMNS = (
    "DS1 OOF score", "DS1 OOF S F1", "DS1 OOF V F1", "DS1 OOF acc",
    "DS2 S Se", "DS2 S +P", "DS2 S F1", "DS2 V Se", "DS2 V +P", "DS2 V F1", "DS2 F F1", "DS2 acc",
)  # fmt: skip


def _oof_logits(path: Path, morph: npt.NDArray[np.float32], rr: npt.NDArray[np.float32],
                fold: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:  # fmt: skip
    """Each fold member's logits on its own held-out fold (without the logit offsets)."""
    _, net = decode_artifact(path.read_bytes())
    if not isinstance(net, BeatEnsemble):
        raise ValueError(f"{path}: not a fold ensemble")
    out = np.zeros((len(morph), 5), np.float32)
    for k, member in enumerate(net.members):
        held = fold == k
        out[held] = net_logits(member, morph[held], rr[held])
    return out


def _write_ensemble(paths: list[Path], bias: npt.NDArray[np.float32], out: Path) -> None:
    """The fold networks of ``paths`` as one ensemble artifact with offsets ``bias``."""
    members: list[BeatNet] = []
    spec = None
    for path in paths:
        header, net = decode_artifact(path.read_bytes())
        assert isinstance(net, BeatEnsemble)
        members += [m for m in net.members if isinstance(m, BeatNet)]
        spec = FeatureSpec.from_dict(header["spec"])
    assert spec is not None
    ensemble = BeatEnsemble(members, torch.from_numpy(np.asarray(bias, np.float32)))
    meta = {"note": f"seed ensemble of {', '.join(p.name for p in paths)} (not shipped)"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(encode_artifact(ensemble, spec, metadata=meta))


def main(argv: list[str] | None = None) -> int:
    """Print one row per artifact, the spread, and the seed ensembles' DS1 score."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifacts", nargs="+", type=Path)
    p.add_argument("--ds2", action="store_true", help="also score each artifact on DS2")
    p.add_argument(
        "--ensembles",
        type=Path,
        default=None,
        help="write each seed ensemble as DIR/ens<m>.cwm (for benchmarks/bench_beats.py)",
    )
    p.add_argument(
        "--groups",
        type=int,
        default=0,
        help="also score consecutive groups of this many artifacts as seed ensembles "
        "(replicates of an ensemble recipe), with their mean and sd",
    )
    args = p.parse_args(argv)
    settings = Settings.from_env()
    data_dir, cache_dir = Path(settings.data_dir) / "mitdb", Path(settings.cache_dir)
    rows = []
    print("| artifact | " + " | ".join(COLUMNS[: 4 + 8 * args.ds2]) + " |")
    print("|---" * (1 + 4 + 8 * args.ds2) + "|")
    for path in args.artifacts:
        header, _ = decode_artifact(path.read_bytes())
        o = header["metadata"]["ds1_out_of_fold"]["with_bias"]
        row = [o["all"]["score"], o["S"]["f1"], o["V"]["f1"], o["all"]["accuracy"]]
        if args.ds2:
            r = run_evaluation(data_dir, cache_dir, path)
            c = r["classes"]
            row += [c["S"]["se"], c["S"]["ppv"], c["S"]["f1"], c["V"]["se"], c["V"]["ppv"],
                    c["V"]["f1"], c["F"]["f1"], r["accuracy"]]  # fmt: skip
        rows.append([float(v) for v in row])
        print(f"| {path.name} | " + " | ".join(f"{v:.1f}" for v in rows[-1]) + " |")
    a = np.asarray(rows)
    if len(a) > 1:
        print("| mean | " + " | ".join(f"{v:.1f}" for v in a.mean(axis=0)) + " |")
        print("| sd | " + " | ".join(f"{v:.1f}" for v in a.std(axis=0, ddof=1)) + " |")
        span = zip(a.min(axis=0), a.max(axis=0), strict=True)
        print("| range | " + " | ".join(f"{lo:.1f}-{hi:.1f}" for lo, hi in span) + " |")
    header, _ = decode_artifact(args.artifacts[0].read_bytes())
    data = load_beats(data_dir, DS1, FeatureSpec.from_dict(header["spec"]), cache_dir)
    fold_of = {name: k for k, names in enumerate(DS1_FOLDS) for name in names}
    fold = np.asarray([fold_of[data.names[i]] for i in data.record], np.int64)
    oofs = [_oof_logits(path, data.morph, data.rr, fold) for path in args.artifacts]
    for m in range(2, len(oofs) + 1):
        score, t, bias = _ensemble_score(oofs[:m], data.y)
        if args.ensembles is not None:
            _write_ensemble(args.artifacts[:m], bias, args.ensembles / f"ens{m}.cwm")
        print(
            f"ensemble of the first {m} ({4 * m} networks): DS1 out-of-fold score "
            f"{score:.2f}, S F1 {t['S']['f1']}, V F1 {t['V']['f1']}, "
            f"accuracy {t['all']['accuracy']}, offsets {bias.tolist()}"
        )
    if args.groups > 1:
        _print_groups(args.artifacts, oofs, data.y, args.groups)
    return 0


def _ensemble_score(
    oofs: list[npt.NDArray[np.float32]], y: npt.NDArray[np.int64]
) -> tuple[float, dict[str, dict[str, float]], npt.NDArray[np.float32]]:
    """Score, per-class table and refitted logit offsets of the mean of ``oofs``."""
    mean = np.mean(oofs, axis=0)
    bias = fit_logit_bias(mean, y)
    pred = (mean + bias).argmax(axis=1)
    return selection_score(y, pred), scores_table(y, pred), bias


def _print_groups(
    paths: list[Path], oofs: list[npt.NDArray[np.float32]], y: npt.NDArray[np.int64], size: int
) -> None:
    """One row per consecutive group of ``size`` artifacts scored as an ensemble."""
    print(f"\n| group of {size} | DS1 OOF score | S F1 | V F1 | accuracy |\n|---|---|---|---|---|")
    rows = []
    for a in range(0, len(oofs) - size + 1, size):
        score, t, _ = _ensemble_score(oofs[a : a + size], y)
        rows.append((score, t["S"]["f1"], t["V"]["f1"], t["all"]["accuracy"]))
        names = " + ".join(p.name for p in paths[a : a + size])
        print(f"| {names} | " + " | ".join(f"{v:.1f}" for v in rows[-1]) + " |")
    r = np.asarray(rows, np.float64)
    print("| mean | " + " | ".join(f"{v:.1f}" for v in r.mean(axis=0)) + " |")
    if len(r) > 1:
        print("| sd | " + " | ".join(f"{v:.1f}" for v in r.std(axis=0, ddof=1)) + " |")


if __name__ == "__main__":
    sys.exit(main())
