"""Nutrition5k (Thames et al., CVPR 2021) as a SampleTable: overhead RGB images with per-dish
ingredients, total mass, calories, fat, carb and protein.

Layout of the release (github.com/google-research-datasets/Nutrition5k README, checked
2026-12; the bucket's ``nutrition5k_dataset/`` folder)::

    metadata/dish_metadata_cafe1.csv, dish_metadata_cafe2.csv
    metadata/ingredients_metadata.csv     (the README says ingredient_metadata.csv: both accepted)
    dish_ids/splits/rgb_train_ids.txt, rgb_test_ids.txt (and depth_*_ids.txt)
    imagery/realsense_overhead/<dish_id>/rgb.png (+ depth_raw.png, 16-bit, depth_color.png)

A dish row has no header: ``dish_id, total_calories, total_mass, total_fat, total_carb,
total_protein``, then 7 fields per ingredient: ``ingr_<10 digits>, name, grams, calories, fat,
carb, protein``. The README also lists a ``num_ingrs`` field after the totals that the released
rows do not have; a row that does have it (an integer, then groups of 7) is read too.

Quirks of the release, reported (``SampleTable.notes``) and never fatal: listed dishes without an
overhead image are dropped (most side-angle-only dishes); rows whose totals are all zero keep
their ingredients but no mass/calorie/macro labels; a total mass that differs from the sum of its
ingredients' grams by more than 1 g is counted (the total is kept: it is what the scale read);
the ingredient named ``deprecated`` is left out of the ingredient labels. Dishes in neither split
list are dropped. ``variant="depth"`` reads the ``depth_*`` split lists instead of ``rgb_*``.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import pandas as pd

from foodmtl.errors import DataError
from foodmtl.data.paths import require_path
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.sets import LoadOptions

log = logging.getLogger(__name__)

SOURCE = "nutrition5k"
TOTALS = ("calories", "mass", "fat", "carb", "protein")  # the order of the row's totals
UNITS = {"calories": "kcal", "mass": "g", "fat": "g", "carb": "g", "protein": "g"}
INGREDIENT_FIELDS = 7
DEPRECATED = "deprecated"
MASS_TOLERANCE = 1.0  # grams: totals further from the sum of their ingredients are counted
HOW_TO_GET = ("download nutrition5k_dataset.tar.gz (or the metadata, dish_ids and imagery/realsense_overhead "
              "folders with gsutil) from https://github.com/google-research-datasets/Nutrition5k and extract it")


def read_nutrition5k(root: str | Path, variant: str = "rgb") -> SampleTable:
    """One row per dish that has an overhead image and a split; splits ``train`` / ``test``."""
    root = Path(root).expanduser().resolve()
    require_path(root / "metadata", "Nutrition5k", HOW_TO_GET)
    notes: list[str] = []
    names = read_ingredient_names(root / "metadata")
    dishes = read_dishes(root / "metadata", notes)
    splits = read_splits(root / "dish_ids" / "splits", variant)
    dishes["split"] = dishes["dish_id"].map(splits)
    unsplit = int(dishes["split"].isna().sum())
    if unsplit:
        notes.append(f"{unsplit} dish(es) are in no {variant} split list: dropped")
    dishes = dishes[dishes["split"].notna()]
    image = str(root / "imagery" / "realsense_overhead") + "/" + dishes["dish_id"] + "/rgb.png"
    has_image = image.map(lambda p: Path(p).is_file())
    if (~has_image).any():
        notes.append(f"{int((~has_image).sum())} listed dish(es) have no overhead image: dropped")
    frame = dishes[has_image.to_numpy()].assign(image=image[has_image], source=SOURCE)
    for note in notes:
        log.info("Nutrition5k: %s", note)
    used = set(name for row in frame["ingredients"] for name in row)
    vocab = {"ingredients": [n for n in names if n in used] + sorted(used - set(names)),
             **{task: [unit] for task, unit in UNITS.items()}}
    return SampleTable(empty_columns(frame.reset_index(drop=True)), vocab, notes)


def read_ingredient_names(metadata: Path) -> list[str]:
    """Ingredient names in id order from ingredients_metadata.csv (header ``ingr,id,cal/g,...``)."""
    path = next((metadata / n for n in ("ingredients_metadata.csv", "ingredient_metadata.csv")
                 if (metadata / n).is_file()), None)
    if path is None:
        return []
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a CSV table: {exc}") from None
    table.columns = [c.strip() for c in table.columns]
    if not {"ingr", "id"} <= set(table.columns):
        raise DataError(path, f"expected the header ingr,id,cal/g,fat(g),carb(g),protein(g); got {','.join(table.columns)}",
                        line=1)
    ids = pd.to_numeric(table["id"], errors="coerce")
    if ids.isna().any():
        bad = int(ids.isna().idxmax())
        raise DataError(path, f"id '{table['id'][bad]}' is not a number", line=bad + 2)
    names = table.assign(id=ids).sort_values("id")["ingr"].str.strip()
    return [n for n in dict.fromkeys(names) if n and n != DEPRECATED]


def read_dishes(metadata: Path, notes: list[str]) -> pd.DataFrame:
    files = sorted(metadata.glob("dish_metadata_cafe*.csv"))
    if not files:
        raise FileNotFoundError(f"Nutrition5k not found: no {metadata}/dish_metadata_cafe*.csv.\n  To get it: {HOW_TO_GET}")
    rows, seen = [], {}
    for path in files:
        with path.open(newline="", encoding="utf-8") as f:
            for number, fields in enumerate(csv.reader(f), start=1):
                if not fields or not "".join(fields).strip():
                    continue
                dish = parse_dish(fields, path, number)
                if dish["dish_id"] in seen:
                    raise DataError(path, f"dish {dish['dish_id']} is listed twice (first at {seen[dish['dish_id']]})",
                                    line=number)
                seen[dish["dish_id"]] = f"{path.name}, line {number}"
                rows.append(dish)
    frame = pd.DataFrame(rows, columns=["dish_id", *TOTALS, "ingredients", "grams"])
    report_quirks(frame, notes)
    zero = (frame[list(TOTALS)] == 0).all(axis=1)
    frame.loc[zero, list(TOTALS)] = float("nan")
    return frame.drop(columns="grams")


def parse_dish(fields: list[str], path: Path, line: int) -> dict:
    fields = [f.strip() for f in fields]
    rest = fields[6:]
    if len(rest) % INGREDIENT_FIELDS and (len(rest) - 1) % INGREDIENT_FIELDS == 0 and rest[0].isdigit():
        rest = rest[1:]  # the README's num_ingrs field
    if len(fields) < 6 or len(rest) % INGREDIENT_FIELDS:
        raise DataError(path, f"expected dish_id, 5 totals and 7 fields per ingredient; got {len(fields)} fields",
                        line=line)
    if not fields[0].startswith("dish_"):
        raise DataError(path, f"'{fields[0]}' is not a dish id (dish_<timestamp>)", line=line)
    totals = [number(v, path, line) for v in fields[1:6]]
    groups = [rest[i:i + INGREDIENT_FIELDS] for i in range(0, len(rest), INGREDIENT_FIELDS)]
    names = tuple(dict.fromkeys(g[1] for g in groups if g[1] != DEPRECATED))
    grams = sum(number(g[2], path, line) for g in groups)
    return {"dish_id": fields[0], **dict(zip(TOTALS, totals)), "ingredients": names, "grams": grams}


def number(text: str, path: Path, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(path, f"'{text}' is not a number", line=line) from None


def report_quirks(frame: pd.DataFrame, notes: list[str]) -> None:
    zero = int((frame[list(TOTALS)] == 0).all(axis=1).sum())
    if zero:
        notes.append(f"{zero} dish(es) have all-zero totals: no mass/calorie/macro labels for them")
    off = int(((frame["mass"] - frame["grams"]).abs() > MASS_TOLERANCE).sum())
    if off:
        notes.append(f"{off} dish(es) have a total mass more than {MASS_TOLERANCE:g} g from the sum of their "
                     "ingredients' grams (the total is kept)")
    deprecated = int(frame["ingredients"].map(len).eq(0).sum())
    if deprecated:
        notes.append(f"{deprecated} dish(es) have no ingredient besides '{DEPRECATED}'")


def read_splits(folder: Path, variant: str) -> dict[str, str]:
    """dish id -> ``train`` / ``test`` from ``<variant>_{train,test}_ids.txt``."""
    if variant not in ("rgb", "depth"):
        raise ValueError(f"Nutrition5k split variant must be rgb or depth, got {variant!r}")
    out: dict[str, str] = {}
    for split in ("train", "test"):
        path = folder / f"{variant}_{split}_ids.txt"
        require_path(path, "Nutrition5k split list", HOW_TO_GET)
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            dish = line.strip()
            if not dish:
                continue
            if dish in out:
                raise DataError(path, f"dish {dish} is in more than one split list", line=number)
            out[dish] = split
    return out


def load(root: str, options: LoadOptions) -> SampleTable:
    """Overhead RGB: per-dish ingredients, mass, calories, fat, carb, protein."""
    return read_nutrition5k(root)
