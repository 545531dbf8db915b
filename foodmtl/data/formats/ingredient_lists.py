"""Comma-separated ingredient lists, one recipe (or class) a line, as Bolaños, Ferrà and Radeva
publish them (Ingredients101 ``ingredients.txt`` / ``ingredients_simplified.txt``, Recipes5k
``ingredients_Recipes5k.txt`` / ``ingredients_simplified_Recipes5k.txt``).

A line is split at ``,``; each name is stripped and lower-cased, as the authors' loader does
(MarcBS/food_ingredients_recognition, ``data_engine/prepare_data.py``,
``convertIngredientsList2BinaryClasses``). Quirks of some copies are kept as notes, not errors:
CRLF line ends, a name repeated within a line (kept once), empty names (``a,,b``; dropped) and
literal ``\\uXXXX`` text left by a JSON export (``kahl\\u00faa``; decoded to the character).

Vocabulary order is the authors' too: names by the number of lines that hold them, most first
(``collections.Counter.most_common``); ties in order of first appearance in the file, which is
Python 3's rule (the authors' Python 2 left ties in dict order, unspecified).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from foodmtl.data.formats.index_lists import read_entries
from foodmtl.data.paths import read_text

ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def read_ingredient_lists(path: Path, notes: list[str]) -> list[tuple[str, ...]]:
    """One tuple of names per line (line i = entry i); quirks met are appended to ``notes``."""
    text = read_text(path)
    if "\r\n" in text:
        notes.append(f"{path.name}: CRLF line ends (read like LF)")
    entries, counts = [], Counter()
    for line in read_entries(path, text):
        names = [decode(name.strip().lower()) for name in line.split(",")]
        counts.update(escaped=sum("\\u" in name.lower() for name in line.split(",")),
                      empty=names.count(""), repeated=int(len(set(names) - {""}) < len(names) - names.count("")))
        entries.append(tuple(dict.fromkeys(name for name in names if name)))
    describe_quirks(path, counts, notes)
    return entries


def decode(name: str) -> str:
    return ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), name)


def describe_quirks(path: Path, counts: Counter, notes: list[str]) -> None:
    if counts["repeated"]:
        notes.append(f"{path.name}: {counts['repeated']} line(s) name an ingredient twice: kept once")
    if counts["escaped"]:
        notes.append(f"{path.name}: {counts['escaped']} name(s) hold literal \\uXXXX text: decoded")
    if counts["empty"]:
        notes.append(f"{path.name}: {counts['empty']} empty name(s) (',,' or a trailing ','): dropped")


def vocabulary(entries: list[tuple[str, ...]]) -> list[str]:
    """Names by the number of entries holding them, most first; ties by first appearance."""
    return [name for name, _ in Counter(name for entry in entries for name in entry).most_common()]
