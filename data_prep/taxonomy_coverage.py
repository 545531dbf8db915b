"""How many class names of a name list a taxonomy covers, exactly and after normalising.

    python data_prep/taxonomy_coverage.py --names Food2k_complete/food2k_label2name_en.txt \
        [--taxonomy food101 foodx251 my_taxonomy.csv]

``--names``: ``<id>--<name>`` lines (Food2K's ``food2k_label2name_en.txt``). A taxonomy joins
onto a data set by exact dish name (``attach_taxonomy``), so only the exact count labels
images as it stands; the normalised count (lower case, runs of other characters -> ``_``:
``Garlic bread`` == ``garlic_bread``) says how much a renamed copy of the CSV would cover.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install needed

from foodmtl.errors import DataError  # noqa: E402
from foodmtl.data.sets.food2k import read_label_names  # noqa: E402
from foodmtl.data.taxonomy import BUILTIN, load_taxonomy  # noqa: E402


def normalised(name: str) -> str:
    """Lower case, runs of other characters as ``_``, without the `` [id]`` of a repeated name."""
    return re.sub(r"[^0-9a-z]+", "_", re.sub(r" \[\d+\]$", "", name).lower()).strip("_")


def coverage(names: list[str], dishes: list[str]) -> tuple[int, int]:
    """(names equal to a dish, names equal to a dish after normalising both)."""
    exact, loose = set(dishes), {normalised(d) for d in dishes}
    return sum(n in exact for n in names), sum(normalised(n) in loose for n in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", required=True, type=Path)
    parser.add_argument("--taxonomy", nargs="+", default=list(BUILTIN), help="builtin names or CSV paths")
    args = parser.parse_args(argv)
    try:
        names = read_label_names(args.names)
        taxonomies = {t: load_taxonomy(t)["dish"].tolist() for t in args.taxonomy}
    except (OSError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(names)} class names in {args.names}")
    print("| taxonomy | dishes | exact | normalised |\n| --- | ---: | ---: | ---: |")
    for label, dishes in [*taxonomies.items(), ("all together", sum(taxonomies.values(), []))]:
        exact, loose = coverage(names, dishes)
        print(f"| {label} | {len(set(dishes))} | {exact} ({exact / len(names):.1%}) | "
              f"{loose} ({loose / len(names):.1%}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
