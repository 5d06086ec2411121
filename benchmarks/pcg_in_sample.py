"""In-sample fit of the committed heart-sound model: Se, Sp, MAcc on its own training databases.

Usage::

    python benchmarks/pcg_in_sample.py

Every recording the shipped model was trained on is scored as ``cardiowatch evaluate pcg``
scores a held-out database; figures far below 100 % mean the model underfits.
"""

from __future__ import annotations

from pathlib import Path

from cardiowatch.evaluate_pcg import _per_recording, score_database
from cardiowatch.pcg_data import DATABASES
from cardiowatch.settings import Settings
from cardiowatch.train_pcg import load_all
from models.pcg import PcgClassifier


def main() -> None:
    """Print one line per database."""
    s = Settings()
    model = PcgClassifier.from_bytes(Path(s.pcg_model).read_bytes())
    recordings, ws = load_all(Path(s.data_dir), Path(s.cache_dir), model.spec, None)
    print(f"model {model.version}, in-sample Se / Sp / MAcc %")
    for db in DATABASES:
        test = [i for i, r in enumerate(recordings) if r.db == db]
        r = score_database(recordings, _per_recording(model.net, ws, test))
        print(f"{db}: {r['se']} / {r['sp']} / {r['macc']}")


if __name__ == "__main__":
    main()
