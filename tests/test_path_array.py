"""PathArray (foodmtl/data/path_array.py): a compact ``image`` column that reads as the plain one."""
import numpy as np
import pandas as pd

from foodmtl.data.dataset import path_column
from foodmtl.data.path_array import PathArray
from foodmtl.data.table import COLUMNS, empty_columns

PLAIN = ["/d/0/a.jpg", None, "/d/1/b.jpg", "/e/ü/é.png", "/d/2/c.jpg"]


def compact() -> PathArray:
    """PLAIN as two affixes over one key buffer; row 2 gets its '.jpg' from its suffix."""
    keys = "0/a.jpg\n1/b\nü/é.png\n2/c.jpg".encode()
    starts = np.array([0, 0, 8, 12, 22])
    ends = np.array([7, 0, 11, 21, 29])
    return PathArray(keys, starts, ends, np.array([0, -1, 1, 2, 0], np.int8),
                     (("/d/", ""), ("/d/", ".jpg"), ("/e/", "")))


def test_values_read_back_as_the_plain_strings():
    paths = compact()
    assert list(paths) == PLAIN and [paths[i] for i in range(len(PLAIN))] == PLAIN
    assert paths.isna().tolist() == [v is None for v in PLAIN]
    assert paths[np.array([True, False, True, False, True])].tolist() == PLAIN[0::2]
    assert list(paths.take([4, -1, 0], allow_fill=True)) == [PLAIN[4], None, PLAIN[0]]
    assert list(paths.take([-1])) == [PLAIN[-1]] and list(paths.copy()) == PLAIN


def test_pandas_operations_match_an_object_column():
    frame = pd.DataFrame({"image": compact(), "split": ["train", "val", "train", "val", "train"]})
    plain = frame.assign(image=pd.Series(PLAIN, dtype=object))
    for part in ("train", "val"):
        assert frame[frame["split"] == part]["image"].tolist() == plain[plain["split"] == part]["image"].tolist()
    joined = pd.concat([frame, frame.iloc[::-1]], ignore_index=True)
    assert isinstance(joined["image"].array, PathArray) and joined["image"].tolist() == PLAIN + PLAIN[::-1]
    mixed = pd.concat([frame, plain], ignore_index=True)["image"]  # with another source's paths: objects
    assert mixed.tolist() == PLAIN + PLAIN
    image = frame["image"]
    assert (image == "/d/1/b.jpg").tolist() == [v == "/d/1/b.jpg" for v in PLAIN]
    assert image.dropna().sort_values().tolist() == sorted(v for v in PLAIN if v)
    assert image.map(lambda p: p and p[-3:], na_action="ignore").tolist() == [p and p[-3:] for p in PLAIN]
    assert pd.concat([image, image]).duplicated().tolist() == [False] * 5 + [True] * 5


def test_absent_column_reads_none_at_a_byte_a_row():
    frame = empty_columns(pd.DataFrame({"image": PLAIN, "split": "train", "source": "x", "dish": "y"}),
                          compact=True)
    assert list(frame.columns) == list(COLUMNS)
    for column in ("ingredients", "mask", "instances"):
        assert frame[column].tolist() == [None] * 5 and frame[column].isna().all()
        part = frame[frame["image"].notna()][column].array
        again = pd.concat([frame[column], frame[column]]).array
        for kept in (part, again, part.copy()):
            assert list(kept) == [None] * len(kept) and kept.nbytes == len(kept)  # the codes only


def test_the_dataset_keeps_the_array_itself():
    paths = pd.Series(compact())
    assert path_column(paths) is paths.array
    assert path_column(pd.Series(PLAIN)).tolist() == PLAIN  # other data sets: a StringColumn
