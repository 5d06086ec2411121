"""Inner model selection for the heart-sound classifier, blind to every outer test database.

For each unordered pair ``{X, Y}`` of the four databases a model is trained on the other two and
scored (recording MAcc, as ``cardiowatch evaluate pcg`` scores) on ``X`` and on ``Y``. The
inner score of a variant for the outer fold that holds ``X`` out is the mean MAcc over the
three inner folds ``Y != X`` (trained without ``X`` and without ``Y``, tested on ``Y``), so no
figure of ``X`` enters the choice for ``X``. The shipped model's variant is chosen by the mean
over all twelve inner figures.

Usage::

    python benchmarks/pcg_inner_select.py VARIANT [VARIANT ...] --json out/pcg_inner.json

Variants: ``cardiowatch.train_pcg.CANDIDATES``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from cardiowatch.evaluate_pcg import _per_recording, score_database
from cardiowatch.pcg_data import DATABASES
from cardiowatch.settings import Settings
from cardiowatch.train_pcg import CANDIDATES, fit, load_all


def inner_scores(name: str, data_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """The twelve inner MAcc figures of one variant, keyed ``"outer/inner"``."""
    spec, config = CANDIDATES[name]
    recordings, ws = load_all(data_dir, cache_dir, spec, None)
    scores: dict[str, Any] = {}
    for x, y in itertools.combinations(DATABASES, 2):
        train = [i for i, r in enumerate(recordings) if r.db not in (x, y)]
        t0 = time.process_time()
        net = fit(recordings, ws, train, replace(config))
        for outer, inner in ((x, y), (y, x)):
            test = [i for i, r in enumerate(recordings) if r.db == inner]
            scores[f"{outer}/{inner}"] = score_database(recordings, _per_recording(net, ws, test))
        mx, my = scores[f"{y}/{x}"]["macc"], scores[f"{x}/{y}"]["macc"]
        cpu_s = time.process_time() - t0
        print(f"{name}: without {x}, {y} ({cpu_s:.0f} s CPU): {x} {mx}, {y} {my}", flush=True)
    per_outer = {
        outer: round(sum(scores[f"{outer}/{o}"]["macc"] for o in DATABASES if o != outer) / 3, 2)
        for outer in DATABASES
    }
    overall = round(sum(s["macc"] for s in scores.values()) / len(scores), 2)
    return {"inner": scores, "per_outer": per_outer, "overall": overall}


def main() -> None:
    """Print and save the inner figures of the named variants."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", choices=sorted(CANDIDATES))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    s = Settings()
    result: dict[str, Any] = {}
    if args.json is not None and args.json.exists():
        result = json.loads(args.json.read_text())
    for name in args.variants:
        result[name] = inner_scores(name, Path(s.data_dir), Path(s.cache_dir))
        print(
            name, "per outer fold:", result[name]["per_outer"], "overall", result[name]["overall"]
        )
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
