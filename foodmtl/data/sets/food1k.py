"""Food1K, the 1,000-class data of the ICCV 2021 LargeFineFoodAI recognition challenge: its layout
and the sources it was checked against are in ``food2k.py``, which reads both releases' lists."""
from __future__ import annotations

from foodmtl.data.sets import LoadOptions
from foodmtl.data.sets.food2k import read_food1k
from foodmtl.data.table import SampleTable
from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

TEST_SPLIT = "val"  # the test images carry no labels: the release's val is the test, validation is carved from train


def load(root: str, options: LoadOptions) -> SampleTable:
    """Dish only by default (classes are ids: the release names none)."""
    table = read_food1k(root)
    return attach_taxonomy(table, load_taxonomy(options.taxonomy)) if options.taxonomy else table
