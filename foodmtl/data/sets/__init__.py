"""Published data sets, one module each (``foodmtl/data/sets/<name>.py``), found by name.

A set's module holds its layout knowledge (docstring with sources), its reader(s) and the one
contract every set keeps::

    def load(root: str, options: LoadOptions) -> SampleTable

Adding a data set is one new file here (plus its miniature and test): ``foodmtl train`` finds it
as ``data.dataset: <name>``, ``data_prep/verify.py --dataset <name>`` checks it, and the config's
name check lists this folder (``foodmtl.config.names.dataset_names``), so there is no second list.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from foodmtl.config.names import dataset_name, dataset_names
from foodmtl.data.table import SampleTable


@dataclass(frozen=True)
class LoadOptions:
    """What a config says about one source beyond its folder (``data.taxonomy`` or a source's)."""

    taxonomy: str | None = None  # builtin taxonomy name or CSV path: dish -> category, cuisine (data/taxonomy.py)
    ingredient_list: str = "simplified"  # Ingredients101 / Recipes5k: their simplified or raw ingredient file


def names() -> tuple[str, ...]:
    return dataset_names()


def get(name: str) -> ModuleType:
    """The module of data set ``name`` (any case); UnknownNameError with the close names."""
    return importlib.import_module(f"{__name__}.{dataset_name(name)}")


def test_split(name: str) -> str:
    """The release split that serves as the test: ``test``, or a set's ``TEST_SPLIT`` where its test
    labels are withheld (FoodX-251: its val; ``foodmtl.data.validation``)."""
    return getattr(get(name), "TEST_SPLIT", "test")


def load(name: str, root: str, options: LoadOptions | None = None) -> SampleTable:
    return get(name).load(str(root), options or LoadOptions())
