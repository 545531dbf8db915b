"""Format-exact miniature of MAFood-121 (layout: ``foodmtl/data/sets/mafood121.py``): three dishes of
two cuisines, tiny JPEGs, LF lines without a final newline, file names in the release's two styles."""
from __future__ import annotations

from pathlib import Path

from miniatures import write_jpeg

DISHES = ("takoyaki", "pho", "croque_madame")
CUISINES = ("japanese", "vietnamese", "french")
CUISINE_OF = (0, 1, 2)
GROUPS = ("bread", "dumpling", "egg", "fried_food", "meat", "noodles/pasta", "rice", "seafood", "soup", "vegetable")
COMBINATIONS = (("egg", "fried_food", "vegetable"), ("noodles/pasta", "seafood", "soup"),
                ("bread", "egg", "meat"), ("bread", "meat"), ("fried_food", "seafood"))
# (dish, file, food-group combination) per split; croque_madame carries two combinations, as in the release
IMAGES = {
    "train": [(0, "3846185.jpg", 4), (1, "1002382.jpg", 1), (2, "2879957.jpg", 2), (2, "53_1.jpg", 3)],
    "val": [(0, "1348805.jpg", 0), (1, "9_2.jpg", 1)],
    "test": [(2, "427955.jpg", 3), (1, "921227.jpg", 1), (0, "62_4.jpg", 4)],
}


def make_mafood121(root: Path, images: dict[str, list[tuple[int, str, int]]] | None = None) -> Path:
    """``root`` = the MAFood121 folder: ``images/<dish>/<file>`` and ``annotations/``."""
    images = IMAGES if images is None else images
    annotations = root / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    write(annotations / "dishes.txt", [f"d_{d}" for d in DISHES])
    write(annotations / "cuisinestyles.txt", [f"sty_{c}" for c in CUISINES])
    (annotations / "baseIngredients.txt").write_text(", ".join(f"ff_{g}" for g in GROUPS) + "\n")
    write(annotations / "foodgroups.txt", [",".join(f"ff_{g}" for g in c) for c in COMBINATIONS])
    for split, rows in images.items():
        for k, (dish, file, _) in enumerate(rows):
            write_jpeg(root / "images" / DISHES[dish] / file, seed=k)
        write(annotations / f"{split}.txt", [f"{DISHES[d]}/{f}" for d, f, _ in rows])
        write(annotations / f"{split}_lbls_d.txt", [str(d) for d, _, _ in rows])
        write(annotations / f"{split}_lbls_cs.txt", [str(CUISINE_OF[d]) for d, _, _ in rows])
        write(annotations / f"{split}_lbls_ff.txt", [str(c) for _, _, c in rows])
    return root


def write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines))
