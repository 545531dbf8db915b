"""Class-level taxonomy: coarse category, cuisine and ingredients per dish, joined onto a SampleTable.

A taxonomy is a CSV with header ``dish,category,cuisine,ingredients`` (ingredients
``;``-separated; an empty cell leaves that task unlabelled for the dish). Builtin ones ship in
``foodmtl/data/taxonomies/`` (see its README for how they were made and their limits).
"""
from __future__ import annotations

import io
import logging
import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import pandas as pd

from foodmtl.errors import DataError
from foodmtl.data.paths import read_text
from foodmtl.data.table import SampleTable

log = logging.getLogger(__name__)

COLUMNS = ("dish", "category", "cuisine", "ingredients")
LABELS = ("category", "cuisine", "ingredients")
BUILTIN = ("food101", "foodx251")
TAXONOMIES = files("foodmtl.data") / "taxonomies"


def load_taxonomy(source: str | Path) -> pd.DataFrame:
    """A builtin name (``food101``, ``foodx251``) or a CSV path -> one row per dish.

    Returns columns dish, category, cuisine (str or None) and ingredients (tuple or None).
    A malformed CSV, a missing column, an empty dish name or a dish with two rows is a
    DataError naming the file and line.
    """
    if str(source) in BUILTIN:
        path = TAXONOMIES / f"{source}.csv"
        return parse_taxonomy(read_cells(path, path.read_text(encoding="utf-8")), path)
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"taxonomy not found: {path}\n  give a builtin name ({', '.join(BUILTIN)}) "
                                f"or a CSV file with header {','.join(COLUMNS)}")
    return parse_taxonomy(read_cells(path, read_text(path)), path)


def read_cells(path: Path | Traversable, text: str) -> pd.DataFrame:
    """Every cell as text, empty stays "" (a dish called "nan" or "NA" must not turn into NaN);
    row ``i`` is line ``i + 2`` (blank lines are kept as rows for that, then dropped)."""
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(path, f"empty file; expected header {','.join(COLUMNS)}") from None
    except pd.errors.ParserError as exc:
        raise csv_error(path, str(exc)) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    return raw[(raw != "").any(axis=1)]


def csv_error(path: Path | Traversable, message: str) -> DataError:
    """pandas' C-parser message as a DataError at its line ("line N" is 1-based, "row N" 0-based)."""
    found = re.search(r"(line|row) (\d+)", message)
    line = None if found is None else int(found[2]) + (found[1] == "row")
    detail = re.sub(r" in line \d+", "", message.split("C error: ")[-1].strip())
    if "EOF inside string" in detail:
        detail = "a quoted cell starting here is never closed"
    return DataError(path, f"malformed CSV: {detail}", line=line)


def parse_taxonomy(raw: pd.DataFrame, path: Path | Traversable) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; expected header: {','.join(COLUMNS)} "
                              f"(got {','.join(raw.columns)})", line=1)
    cells = raw[list(COLUMNS)].apply(lambda column: column.str.strip())
    unnamed = cells.index[cells["dish"] == ""]
    if len(unnamed):
        raise DataError(path, "empty dish name", line=unnamed[0] + 2)
    again = cells["dish"].duplicated()
    if again.any():
        row = again.idxmax()
        first = cells.index[cells["dish"] == cells["dish"][row]][0]
        raise DataError(path, f"dish '{cells['dish'][row]}' has a second row (first: line {first + 2})", line=row + 2)
    return pd.DataFrame({
        "dish": cells["dish"].tolist(),
        "category": pd.Series([v or None for v in cells["category"]], dtype=object),
        "cuisine": pd.Series([v or None for v in cells["cuisine"]], dtype=object),
        "ingredients": pd.Series([split_ingredients(v) for v in cells["ingredients"]], dtype=object),
    })


def split_ingredients(cell: str) -> tuple[str, ...] | None:
    names = tuple(name.strip() for name in cell.split(";") if name.strip())
    return names or None


def builtin_ingredients() -> list[str]:
    """The documented ingredient vocabulary, in file order."""
    text = (TAXONOMIES / "ingredients.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def uncovered_dishes(table: SampleTable, taxonomy: pd.DataFrame) -> list[str]:
    """Dishes of the table (vocab order) that have no taxonomy row."""
    dishes = table.vocab.get("dish") or sorted(table.frame["dish"].dropna().unique())
    known = set(taxonomy["dish"])
    return [d for d in dishes if d not in known]


def attach_taxonomy(table: SampleTable, taxonomy: pd.DataFrame) -> SampleTable:
    """Fill category/cuisine/ingredients per row by dish name and set their vocabularies.

    A dish without a taxonomy row (or an empty cell) keeps the row's current label, which is
    None unless the data set carried its own; uncovered dishes are logged, never fatal.
    """
    missing = uncovered_dishes(table, taxonomy)
    if missing:
        log.warning("taxonomy has no row for %d dish(es); their category/cuisine/ingredients stay "
                    "unlabelled: %s", len(missing), ", ".join(missing))
    frame = table.frame.copy()
    by_dish = taxonomy.set_index("dish")
    for column in LABELS:
        frame[column] = filled(frame[column], frame["dish"].map(by_dish[column]))
    # Classes from this data set's dishes only: a broad taxonomy must not add classes no image has.
    rows = taxonomy[taxonomy["dish"].isin(table.vocab["dish"])] if table.vocab.get("dish") else taxonomy
    vocab = dict(table.vocab)
    for column in LABELS:
        names = label_names(rows[column]) | label_names(frame[column]) | set(vocab.get(column, []))
        vocab[column] = ordered(names, builtin_ingredients() if column == "ingredients" else [])
    return SampleTable(frame, vocab, table.notes)


def filled(old: pd.Series, new: pd.Series) -> pd.Series:
    """``new`` where it holds a label, else ``old``."""
    values = [n if isinstance(n, (str, tuple)) else o for n, o in zip(new, old)]
    return pd.Series(values, index=old.index, dtype=object)


def label_names(column: pd.Series) -> set[str]:
    names: set[str] = set()
    for value in column:
        if isinstance(value, str):
            names.add(value)
        elif isinstance(value, (tuple, list)):
            names.update(value)
    return names


def ordered(names: set[str], preferred: list[str]) -> list[str]:
    """``preferred`` order first (names not in it after, sorted), else sorted."""
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def attach_categories(table: SampleTable, taxonomy: pd.DataFrame) -> SampleTable:
    """``attach_taxonomy`` for a data set with its own ingredient labels: category and cuisine come
    from the taxonomy, the ingredients (and the reader's notes) stay the data set's."""
    joined = attach_taxonomy(table, taxonomy)
    joined.frame["ingredients"] = table.frame["ingredients"]
    return SampleTable(joined.frame, {**joined.vocab, "ingredients": table.vocab["ingredients"]}, table.notes)
