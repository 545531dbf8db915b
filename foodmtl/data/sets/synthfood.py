"""SynthFood, the generated stand-in (``foodmtl/synthfood/``) written in published layouts: Food-101
(dishes) + ``taxonomy.csv`` (dish-level category and cuisine) + FoodSeg103 masks and COCO instance
json + the Nutrition5k layout's per-image ingredients, mass, calories and macros, joined by image id.

A SynthFood written before version 2 has no Nutrition5k part: its ingredients are the taxonomy's
recipes, and it labels no regression task. Since version 3 its ``val.txt`` (``<dish>/<id>`` keys of
training images) is the validation split; an older one has none, so a run asking for ``val`` carves it
(data/validation.py).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from foodmtl.data.formats.split_lists import require_listed_once
from foodmtl.data.paths import numbered_lines, require_path
from foodmtl.errors import DataError
from foodmtl.data.sets import LoadOptions
from foodmtl.data.sets.coco_instances import read_coco_instances
from foodmtl.data.sets.food101 import read_food101
from foodmtl.data.sets.foodseg103 import read_foodseg103
from foodmtl.data.sets.nutrition5k import TOTALS, read_nutrition5k
from foodmtl.data.table import SampleTable
from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

HINT = "python data_prep/make_synthfood.py --out {root}"


def load(root: str, options: LoadOptions) -> SampleTable:
    root_path = Path(root)
    require_path(root_path / "food101", "SynthFood", HINT.format(root=root_path))
    taxonomy = load_taxonomy(options.taxonomy or str(root_path / "taxonomy.csv"))
    table = attach_taxonomy(read_food101(root_path / "food101"), taxonomy)
    image_id = table.frame["image"].map(lambda p: Path(p).stem)
    seg = read_foodseg103(root_path / "foodseg103")
    table.frame["mask"] = image_id.map(dict(zip(seg.frame["image"].map(lambda p: Path(p).stem), seg.frame["mask"])))
    table.vocab["segmentation"] = seg.vocab["segmentation"]
    attach_instances(table, image_id, root_path / "foodseg103")
    if (root_path / "nutrition5k").is_dir():
        attach_nutrition(table, image_id, read_nutrition5k(root_path / "nutrition5k"))
    if (root_path / "val.txt").is_file():
        split_validation(table, root_path / "val.txt")
    return table


def split_validation(table: SampleTable, listing: Path) -> None:
    """The training images ``listing`` names (``<dish>/<id>`` a line) become the ``val`` split."""
    frame = table.frame
    keys = frame["image"].map(lambda p: f"{Path(p).parent.name}/{Path(p).stem}")
    train = frame["split"] == "train"
    listed = numbered_lines(listing)
    require_listed_once(listing, listed, what="image")
    unknown = listed[~listed.isin(keys[train])]
    if len(unknown):
        raise DataError(listing, f"'{unknown.iloc[0]}' is no training image", line=int(unknown.index[0]))
    frame.loc[train & keys.isin(listed), "split"] = "val"


def attach_instances(table: SampleTable, image_id: pd.Series, foodseg: Path) -> None:
    """SynthFood's COCO instance json per split (written since the instances task), joined by image id."""
    files = sorted(foodseg.glob("instances_*.json"))
    if not files:
        return
    parts = [read_coco_instances(f, foodseg / "Images" / "img_dir" / f.stem.removeprefix("instances_"),
                                 f.stem.removeprefix("instances_")) for f in files]
    frame = pd.concat([p.frame for p in parts])
    table.frame["instances"] = image_id.map(dict(zip(frame["image"].map(lambda p: Path(p).stem), frame["instances"])))
    table.vocab["instances"] = parts[0].vocab["instances"]
    table.notes.extend(note for p in parts for note in p.notes)


def attach_nutrition(table: SampleTable, image_id: pd.Series, n5k: SampleTable) -> None:
    """The Nutrition5k part's ingredients and totals, joined by image id (its dish folder ``dish_<id>``)."""
    per_image = n5k.frame.set_index(n5k.frame["image"].map(lambda p: Path(p).parent.name.removeprefix("dish_")))
    for column in ("ingredients", *TOTALS):
        table.frame[column] = image_id.map(per_image[column]).astype(object if column == "ingredients" else float)
    table.vocab.update({task: n5k.vocab[task] for task in TOTALS})
    known = table.vocab.get("ingredients", [])
    table.vocab["ingredients"] = known + [name for name in n5k.vocab["ingredients"] if name not in known]
