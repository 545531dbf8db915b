"""VireoFood-172 (Chen & Ngo, ACM Multimedia 2016) as a SampleTable: 110,241 images of 172 Chinese
dishes, each marked with which of 353 ingredients it shows.

Layout of the release (the VireoFood172 download, http://vireo.cs.cityu.edu.hk/VireoFood172/)::

    ready_chinese_food/<1..172>/<name>.jpg
    SplitAndIngreLabel/TR.txt, VAL.txt, TE.txt   one image a line: /<dish folder>/<name>.jpg
    SplitAndIngreLabel/IngreLabel.txt            the same path, then one -1 or 1 per ingredient
    SplitAndIngreLabel/FoodList.txt              line i names dish folder i (1-based)
    SplitAndIngreLabel/IngredientList.txt        line j names the j-th value of an IngreLabel row

What was checked, and where (no release README was found in the searchable sources, so the
layout is pieced together from the authors' and others' loaders):

- The authors' group code (github.com/PublicRelease/FoodRecog, ``VireoFood-172/readMe``):
  TR 66,071, VAL 11,016, TE 33,154 images (110,241 in all), 353 ingredients. Its loaders read an
  image at ``root + 'ready_chinese_food' + line`` (the list line keeps its leading ``/``) and read
  ``TE.txt`` and ``IngredientList.txt`` with ``split('\\n')[:-1]``: LF lines, a final newline,
  one ingredient name a line.
- maxium0526/mlcpl (``mlcpl/dataset/loaders.py``, ``Vireo_Food_172``) reads ``IngreLabel.txt``
  with ``pandas.read_csv(sep=' ', header=None, index_col=0)``, looks its rows up by the split
  lists' lines (so both spell the path alike, leading ``/`` included) and takes value 1 as
  present, every other as absent. Of two further public loaders, one maps ``-1`` to absent and
  reads ``FoodList.txt`` from ``SplitAndIngreLabel/``, the other takes
  ``int(line.split('/')[1]) - 1`` as the 0-based dish.

Splits ``train`` / ``val`` / ``test`` from TR / VAL / TE. Quirks, reported in
``SampleTable.notes`` and never fatal: an image in ``IngreLabel.txt`` but in no split list is
dropped (there is no split to put it in); an image in a split list without an ``IngreLabel.txt``
row is kept with its dish label, its ingredients unlabelled; images with no ingredient marked are
counted (they stay labelled: none); an ingredient named twice in ``IngredientList.txt`` is one
class. A list line that is not ``/<folder>/<name>`` with a folder of FoodList.txt, an image listed
twice or in two lists, and an ``IngreLabel.txt`` row that is not a path and one -1/1 per
ingredient are DataErrors naming the file and line. CRLF line ends are read too. Paths come from
the lists: no image is opened (``data_prep/verify.py`` does that).

``IngreLabel.txt`` (about 117 MB: 110,241 rows of 353 values) is parsed by one ``numpy.fromstring`` over all rows; a
row-by-row pass runs only to name a bad row. Time at full size: ``benchmarks/readers.py``.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from foodmtl.errors import DataError
from foodmtl.data.paths import numbered_lines, read_text, require_path
from foodmtl.data.formats.index_lists import read_entries
from foodmtl.data.formats.split_lists import require_listed_once
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.sets import LoadOptions
from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

log = logging.getLogger(__name__)

SOURCE = "vireofood172"
IMAGES = "ready_chinese_food"
LABELS = "SplitAndIngreLabel"
SPLITS = {"train": "TR.txt", "val": "VAL.txt", "test": "TE.txt"}
PRESENT, ABSENT = 1, -1
LIST_LINE = r"^/?(\d+)/[^/\\\s]+$"
HOW_TO_GET = ("request VireoFood172 at http://vireo.cs.cityu.edu.hk/VireoFood172/, extract it and pass the "
              "folder holding ready_chinese_food/ and SplitAndIngreLabel/; check it with "
              "`python data_prep/verify.py --dataset vireofood172 --root DIR`")


def read_vireofood172(root: str | Path) -> SampleTable:
    """One row per listed image; ``vocab["dish"]`` in folder order, ``vocab["ingredients"]`` in
    IngredientList.txt order."""
    root = Path(root).expanduser().resolve()
    labels = root / LABELS
    require_path(labels, "VireoFood-172", HOW_TO_GET)
    notes: list[str] = []
    dishes = read_names(labels / "FoodList.txt")
    repeated = dishes.duplicated()
    if repeated.any():
        line = int(repeated.idxmax())
        raise DataError(labels / "FoodList.txt", f"dish '{dishes[line]}' is named twice", line=line)
    ingredients = read_names(labels / "IngredientList.txt")
    if ingredients.duplicated().any():
        notes.append(f"IngredientList.txt names {int(ingredients.duplicated().sum())} ingredient(s) twice "
                     f"(first: '{ingredients[ingredients.duplicated()].iloc[0]}'): one class each")
    frame = read_splits(labels, len(dishes))
    marks = read_marks(labels / "IngreLabel.txt", ingredients.tolist())
    frame["ingredients"] = pd.Series([marks.get(key) for key in frame["key"]], dtype=object)  # None: no row
    report_unmatched(frame, marks, notes)
    frame = frame.assign(image=str(root / IMAGES) + "/" + frame["key"], source=SOURCE,
                         dish=dishes.to_numpy()[frame["folder"] - 1])
    for note in notes:
        log.info("VireoFood-172: %s", note)
    return SampleTable(empty_columns(frame), {"dish": dishes.tolist(),
                                              "ingredients": list(dict.fromkeys(ingredients))}, notes)


def read_names(path: Path) -> pd.Series:
    """The names of a one-name-a-line file, indexed by line number; line i is entry i, so a blank
    line before the last name is a DataError."""
    require_path(path, "VireoFood-172", HOW_TO_GET)
    return read_entries(path)


def read_splits(folder: Path, dishes: int) -> pd.DataFrame:
    """key (``<folder>/<name>``), folder (1-based dish) and split of every listed image."""
    parts, earlier = [], {}
    for split, name in SPLITS.items():
        path = folder / name
        require_path(path, "VireoFood-172", HOW_TO_GET)
        lines = numbered_lines(path)
        dish = pd.to_numeric(lines.str.extract(LIST_LINE)[0], errors="coerce")  # NaN where the line does not match
        bad = ~dish.between(1, dishes)
        if bad.any():
            line = int(bad.idxmax())
            raise DataError(path, f"expected '/<dish folder 1..{dishes}>/<name>.jpg', got '{lines[line]}'", line=line)
        keys = lines.str.lstrip("/")
        require_listed_once(path, keys, lines, earlier)
        parts.append(pd.DataFrame({"key": keys.to_numpy(), "folder": dish.astype(int).to_numpy(), "split": split}))
    return pd.concat(parts, ignore_index=True)


def read_marks(path: Path, names: list[str]) -> dict[str, tuple[str, ...]]:
    """``<folder>/<name>`` -> the ingredient names marked 1 in its IngreLabel.txt row."""
    require_path(path, "VireoFood-172", HOW_TO_GET)
    numbers, keys, rests = [], [], []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        fields = line.split(maxsplit=1)
        if fields:
            numbers.append(number)
            keys.append(fields[0].lstrip("/"))
            rests.append(fields[1] if len(fields) > 1 else "")
    if not keys:
        raise DataError(path, "lists no images")
    values = parse_values(" ".join(rests), len(keys) * len(names))
    if values is None:
        raise row_error(path, numbers, rests, len(names))
    again = pd.Series(keys).duplicated()
    if again.any():
        row = int(again.idxmax())
        raise DataError(path, f"'{keys[row]}' has a second row (first at line {numbers[keys.index(keys[row])]})",
                        line=numbers[row])
    rows, columns = np.nonzero(values.reshape(len(keys), len(names)) == PRESENT)
    found = np.asarray(names, dtype=object)[columns].tolist()
    bounds = np.searchsorted(rows, np.arange(len(keys) + 1)).tolist()
    if len(set(names)) < len(names):  # a repeated name is one class: marked once per row
        return {key: tuple(dict.fromkeys(found[a:b])) for key, a, b in zip(keys, bounds, bounds[1:])}
    return {key: tuple(found[a:b]) for key, a, b in zip(keys, bounds, bounds[1:])}


def parse_values(text: str, expected: int) -> np.ndarray | None:
    """All values as int8 when there are ``expected`` of them, each -1 or 1; else None."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy's "could not be read to its end"
        try:
            values = np.fromstring(text, dtype=np.int8, sep=" ")
        except (DeprecationWarning, ValueError):
            return None
    if values.size != expected or not (np.abs(values) == 1).all():  # PRESENT or ABSENT (np.isin sorts: 20x slower)
        return None
    return values


def row_error(path: Path, numbers: list[int], rests: list[str], count: int) -> DataError:
    """The DataError of the first row that is not ``count`` values of -1 or 1."""
    for number, rest in zip(numbers, rests):
        tokens = rest.split()
        if len(tokens) != count:
            return DataError(path, f"expected an image path and {count} values (-1 or 1, one per line of "
                                   f"IngredientList.txt), got {len(tokens)} values", line=number)
        bad = next((t for t in tokens if t not in (str(PRESENT), str(ABSENT))), None)
        if bad is not None:
            return DataError(path, f"value '{bad}' is not -1 or 1", line=number)
    return DataError(path, "values that are not -1 or 1")


def report_unmatched(frame: pd.DataFrame, marks: dict[str, tuple[str, ...]], notes: list[str]) -> None:
    unlabelled = int(frame["ingredients"].isna().sum())
    if unlabelled:
        notes.append(f"{unlabelled} listed image(s) have no IngreLabel.txt row: kept with their dish label, "
                     "ingredients unlabelled")
    unsplit = len(marks) - (len(frame) - unlabelled)
    if unsplit:
        notes.append(f"{unsplit} image(s) of IngreLabel.txt are in no split list (TR/VAL/TE.txt): dropped")
    empty = int(frame["ingredients"].map(lambda v: v == ()).sum())
    if empty:
        notes.append(f"{empty} image(s) have no ingredient marked: labelled with none")


def load(root: str, options: LoadOptions) -> SampleTable:
    """Dish and per-image ingredients. ``taxonomy=my.csv`` adds category and cuisine by dish name;
    the images' own ingredient labels stay."""
    table = read_vireofood172(root)
    if not options.taxonomy:
        return table
    joined = attach_taxonomy(table, load_taxonomy(options.taxonomy))
    joined.frame["ingredients"] = table.frame["ingredients"]
    return SampleTable(joined.frame, {**joined.vocab, "ingredients": table.vocab["ingredients"]}, table.notes)
