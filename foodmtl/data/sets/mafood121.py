"""MAFood-121 (Aguilar, Bolaños and Radeva, "Regularized uncertainty-based multi-task learning model
for food analysis", J. Vis. Commun. Image Represent. 60, 2019): 21,175 images of 121 dishes from 11
cuisines, each labelled with its dish, its cuisine and the set of food groups (10) it shows.

Layout of the release (http://www.ub.edu/cvub/mafood121/)::

    MAFood121/images/<dish>/<file>.jpg
    MAFood121/annotations/dishes.txt           one dish a line, prefixed d_ (its folder is unprefixed)
    MAFood121/annotations/cuisinestyles.txt    one cuisine a line, prefixed sty_
    MAFood121/annotations/baseIngredients.txt  the 10 food groups on one line, ', '-separated, prefixed ff_
    MAFood121/annotations/foodgroups.txt       one ','-joined combination of food groups a line
    MAFood121/annotations/{train,val,test}.txt one image a line, '<dish folder>/<file>' under images/
    MAFood121/annotations/{split}_lbls_d.txt   0-based line of dishes.txt, one per image line
    MAFood121/annotations/{split}_lbls_cs.txt  0-based line of cuisinestyles.txt
    MAFood121/annotations/{split}_lbls_ff.txt  0-based line of foodgroups.txt

What was checked, and where:

- A copy of the annotations, Daniel23589/Food_Ontology ``MAFood121/annotations/`` (dishes.txt,
  baseIngredients.txt, foodgroups.txt, {train,val,test}.txt, {split}_lbls_ff.txt): ``d_`` names;
  ``ff_bread, ff_dumpling, ff_egg, ff_fried_food, ff_meat, ff_noodles/pasta, ff_rice, ff_seafood,
  ff_soup, ff_vegetable`` on one line; combinations like ``ff_egg,ff_fried_food,ff_vegetable``;
  list lines like ``takoyaki/3846185.jpg`` or ``enchiladas/53_1.jpg`` (file names differ in style
  per source, so only the folder is read); LF lines, no final newline. Images of one dish carry
  different combinations (``croque_madame`` lines have indices 41 and 156).
- Its loaders: ``slclass.py`` reads ``{split}_lbls_d.txt`` as ints aligned with ``{split}.txt``;
  ``mlclass.py`` prefixes list lines with ``MAFood121/images/``, splits baseIngredients.txt at
  ``', '`` and a foodgroups.txt line at ``','``, and indexes foodgroups.txt by ``{split}_lbls_ff.txt``.
- Not found in any public copy: ``cuisinestyles.txt`` and ``{split}_lbls_cs.txt``. They are read
  as the issue describing the release states (one ``sty_`` name a line; indices like the others).

Labels: ``dish`` (names without ``d_``; vocabulary in dishes.txt order), ``cuisine`` (without
``sty_``; cuisinestyles.txt order) and ``foodgroups`` (multi-label, names without ``ff_``;
baseIngredients.txt order). Splits ``train`` / ``val`` / ``test`` as released; ``val`` is the
release's model-selection split. An image whose folder differs from its dish label keeps the label
and is counted in a note. Malformed lines, an index out of range, a label file whose length differs
from its list, a food group of foodgroups.txt missing from baseIngredients.txt, and an image listed
twice or in two splits are DataErrors naming the file and line. No image is opened
(``data_prep/verify.py`` does that).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from foodmtl.data.formats.index_lists import folder_mismatches, read_entries, read_indices, require_image_key
from foodmtl.data.formats.split_lists import require_listed_once
from foodmtl.data.paths import require_path
from foodmtl.data.sets import LoadOptions
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.errors import ConfigError, DataError

SOURCE = "mafood121"
SPLITS = ("train", "val", "test")
PREFIXES = {"dish": "d_", "cuisine": "sty_", "foodgroups": "ff_"}
HOW_TO_GET = ("request MAFood-121 at http://www.ub.edu/cvub/mafood121/, extract it and pass the MAFood121 "
              "folder (holding images/ and annotations/); check it with "
              "`python data_prep/verify.py --dataset mafood121 --root DIR`")


def read_mafood121(root: str | Path) -> SampleTable:
    """One row per listed image with its dish, cuisine and food groups."""
    root = Path(root).expanduser().resolve()
    notes: list[str] = []
    annotations = root / "annotations"
    require(annotations)
    require(root / "images")
    vocab = {"dish": names(annotations / "dishes.txt", "dish"),
             "cuisine": names(annotations / "cuisinestyles.txt", "cuisine"),
             "foodgroups": food_groups(annotations / "baseIngredients.txt")}
    combinations = read_combinations(annotations / "foodgroups.txt", vocab["foodgroups"])
    earlier: dict[Path, pd.Series] = {}
    frame = pd.concat([split_frame(root, split, vocab, combinations, earlier) for split in SPLITS],
                      ignore_index=True)
    moved = folder_mismatches(frame["key"], frame["dish"])
    if moved:
        notes.append(f"{moved} image(s) sit in a folder other than their dish label's: the label is kept")
    frame = frame.assign(image=str(root / "images") + "/" + frame["key"], source=SOURCE)
    return SampleTable(empty_columns(frame), vocab, notes)


def require(path: Path) -> None:
    require_path(path, "MAFood-121", HOW_TO_GET)


def names(path: Path, task: str) -> list[str]:
    """A one-name-a-line file, its prefix removed; a name listed twice is a DataError."""
    require(path)
    entries = read_entries(path).str.removeprefix(PREFIXES[task])
    again = entries.duplicated()
    if again.any():
        line = int(again.idxmax())
        raise DataError(path, f"{task} '{entries[line]}' is listed twice", line=line)
    return entries.tolist()


def food_groups(path: Path) -> list[str]:
    """baseIngredients.txt: the food groups on one line, ', '-separated."""
    require(path)
    entries = read_entries(path)
    if len(entries) != 1:
        raise DataError(path, "expected the food groups on one line, ', '-separated", line=int(entries.index[1]))
    groups = [name.strip().removeprefix(PREFIXES["foodgroups"]) for name in entries.iloc[0].split(",")]
    if "" in groups or len(set(groups)) < len(groups):
        raise DataError(path, "a food group is empty or listed twice", line=int(entries.index[0]))
    return groups


def read_combinations(path: Path, groups: list[str]) -> list[tuple[str, ...]]:
    """foodgroups.txt: per line, the ','-joined food groups of that combination."""
    require(path)
    combinations = []
    for line, entry in read_entries(path).items():
        combination = tuple(name.strip().removeprefix(PREFIXES["foodgroups"]) for name in entry.split(","))
        unknown = [name for name in combination if name not in groups]
        if unknown:
            raise DataError(path, f"food group '{unknown[0]}' is not in baseIngredients.txt", line=int(line))
        combinations.append(tuple(dict.fromkeys(combination)))
    return combinations


def split_frame(root: Path, split: str, vocab: dict[str, list[str]], combinations: list[tuple[str, ...]],
                earlier: dict[Path, pd.Series]) -> pd.DataFrame:
    """key (``<dish folder>/<file>``), split, dish, cuisine and food groups of one split's images."""
    annotations = root / "annotations"
    listed = annotations / f"{split}.txt"
    require(listed)
    keys = read_entries(listed)
    require_image_key(listed, keys)
    require_listed_once(listed, keys, keys, earlier)
    columns = {"key": keys.to_numpy(), "split": split}
    for task, suffix, names_file, classes in (("dish", "d", "dishes.txt", vocab["dish"]),
                                              ("cuisine", "cs", "cuisinestyles.txt", vocab["cuisine"]),
                                              ("foodgroups", "ff", "foodgroups.txt", combinations)):
        labels = annotations / f"{split}_lbls_{suffix}.txt"
        require(labels)
        index = read_indices(labels, len(classes), names_file, keys, listed)
        columns[task] = [classes[i] for i in index]
    return pd.DataFrame(columns)


def load(root: str, options: LoadOptions) -> SampleTable:
    """Dish, cuisine and food groups as released; a taxonomy would overwrite the release's cuisine."""
    if options.taxonomy:
        raise ConfigError("mafood121 labels dish, cuisine and food groups itself; drop data.taxonomy")
    return read_mafood121(root)
