"""The validation split that model selection reads: the release's, or one carved out of train.

Where a release labels a validation split, it is used as it is. Where it has none (Food-101,
SynthFood, UEC-FoodPix, Nutrition5k), or where its test labels are withheld so that its
validation split must serve as the test (FoodX-251: a set module declares ``TEST_SPLIT = "val"``),
``fraction`` of the training split becomes ``val``: stratified by a single-label column (the dish)
when the data has one, and a function of (image paths, labels, fraction, seed) only, not of the
order the reader listed them in. Each class keeps at least one training image; a class of n
images gives ``round(fraction * n)`` to validation (at least one where n >= 2 and fraction > 0).

Written by hand: scikit-learn's ``StratifiedShuffleSplit`` refuses classes of one image (Food2K
and Nutrition5k have them) and its draw depends on the row order.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

VAL, TRAIN, TEST = "val", "train", "test"
WITHHELD = "test-unlabelled"  # a release's test split whose labels are withheld, when its val serves as test


def carve_validation(frame: pd.DataFrame, fraction: float, seed: int, stratify: str | None) -> pd.DataFrame:
    """``frame`` with ``fraction`` of its ``train`` rows relabelled ``val`` (see the module doc)."""
    train = frame.index[frame["split"] == TRAIN]
    if fraction <= 0 or len(train) == 0:
        return frame
    rows = frame.loc[train]
    groups = rows[stratify].astype(str) if stratify and rows[stratify].notna().all() else pd.Series("", rows.index)
    chosen: list[np.ndarray] = []
    for label, members in rows.groupby(groups, sort=True).groups.items():
        ordered = rows.loc[members, "image"].sort_values(kind="stable").index.to_numpy()
        take = held_out_count(len(ordered), fraction)
        rng = np.random.default_rng([seed, _stable_hash(str(label))])
        chosen.append(rng.permutation(ordered)[:take])
    out = frame.copy()
    out.loc[np.concatenate(chosen) if chosen else [], "split"] = VAL
    return out


def held_out_count(n: int, fraction: float) -> int:
    """Of ``n`` images, how many a ``fraction`` holds out: ``round(fraction * n)``, at least one where
    ``fraction`` > 0 and n >= 2, and always one left to train on (none where n < 2)."""
    if fraction <= 0:
        return 0
    return min(n - 1, max(int(n >= 2), round(fraction * n)))


def with_test_split(frame: pd.DataFrame, test_split: str) -> pd.DataFrame:
    """The release split ``test_split`` named ``test``; where that is not the release's own test (its
    labels are withheld), the release's test rows become ``test-unlabelled``."""
    if test_split == TEST:
        return frame
    out = frame.copy()
    out.loc[out["split"] == TEST, "split"] = WITHHELD
    out.loc[out["split"] == test_split, "split"] = TEST
    return out


def with_validation(frame: pd.DataFrame, fraction: float, seed: int, stratify: str | None) -> pd.DataFrame:
    """A release's ``val`` as it is; without one, ``val`` carved out of train."""
    if (frame["split"] == VAL).any():
        return frame
    return carve_validation(frame, fraction, seed, stratify)


def _stable_hash(text: str) -> int:
    """A hash that is the same in every process (Python's ``hash`` of a str is salted per process)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16)
