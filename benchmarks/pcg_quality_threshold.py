"""The quality rule's threshold on every labelled recording, and what it flags per database.

``models.pcg.HF_SHARE_MAX`` is the threshold :func:`models.pcg.choose_hf_threshold` picks here
(PASCAL artifacts against every other labelled recording). ``cardiowatch evaluate pcg`` picks
it again inside each training fold; this script only documents the shipped constant.

Usage::

    python benchmarks/pcg_quality_threshold.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cardiowatch.pcg_data import DATABASES
from cardiowatch.settings import Settings
from cardiowatch.train_pcg import CANDIDATES, SHIPPED_VARIANT, load_all
from models.pcg import HF_SHARE_MAX, choose_hf_threshold


def main() -> None:
    """Print the chosen threshold and the share of recordings it flags per database."""
    settings = Settings()
    spec = CANDIDATES[SHIPPED_VARIANT][0]
    recordings, ws = load_all(Path(settings.data_dir), Path(settings.cache_dir), spec, None)
    shares = [ws.hf_share[ws.rec == i] for i in range(len(recordings))]
    labels = [r.poor_quality for r in recordings]
    chosen = choose_hf_threshold(shares, labels)
    print(f"chosen threshold {chosen} (shipped HF_SHARE_MAX {HF_SHARE_MAX})")
    for db in DATABASES:
        for poor in (1, 0):
            idx = [i for i, r in enumerate(recordings) if r.db == db and r.poor_quality == poor]
            if not idx:
                continue
            flagged = sum(
                bool(len(shares[i]) and np.mean(shares[i] >= HF_SHARE_MAX) >= 0.5) for i in idx
            )
            kind = "artifact" if poor else "other"
            print(f"{db:11s} {kind:8s} flagged {flagged} / {len(idx)}")


if __name__ == "__main__":
    main()
