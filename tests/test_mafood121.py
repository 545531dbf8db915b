"""MAFood-121 reader on a format-exact miniature of the release."""
from pathlib import Path

import pytest

from foodmtl.config.tasks import KNOWN_TASKS
from foodmtl.data import sets
from foodmtl.data.builder import build_tasks
from foodmtl.data.sets.mafood121 import read_mafood121
from foodmtl.errors import ConfigError, DataError
from miniatures_mafood121 import make_mafood121


def rows(table) -> dict:
    """Row of each image, keyed by '<folder>/<file>'."""
    frame = table.frame
    return frame.set_index(frame["image"].map(lambda p: "/".join(Path(p).parts[-2:]))).to_dict("index")


def test_labels_vocabularies_and_splits_as_released(tmp_path):
    root = make_mafood121(tmp_path / "MAFood121")
    table = read_mafood121(root)
    assert table.vocab == {"dish": ["takoyaki", "pho", "croque_madame"],
                           "cuisine": ["japanese", "vietnamese", "french"],
                           "foodgroups": ["bread", "dumpling", "egg", "fried_food", "meat", "noodles/pasta",
                                          "rice", "seafood", "soup", "vegetable"]}
    by_key = rows(table)
    assert table.frame["split"].value_counts().to_dict() == {"train": 4, "test": 3, "val": 2}
    croque = by_key["croque_madame/53_1.jpg"]
    assert (croque["split"], croque["dish"], croque["cuisine"], croque["foodgroups"]) == (
        "train", "croque_madame", "french", ("bread", "meat"))
    assert by_key["croque_madame/2879957.jpg"]["foodgroups"] == ("bread", "egg", "meat")  # varies within a dish
    assert by_key["pho/9_2.jpg"]["foodgroups"] == ("noodles/pasta", "seafood", "soup")
    assert by_key["takoyaki/62_4.jpg"]["image"] == str(root / "images" / "takoyaki" / "62_4.jpg")
    assert set(table.frame["source"]) == {"mafood121"} and table.notes == []


def test_loaded_by_name_and_food_groups_are_a_multilabel_task(tmp_path):
    table = sets.load("mafood121", str(make_mafood121(tmp_path / "m")))
    assert KNOWN_TASKS["foodgroups"].kind == "multilabel"
    tasks = {t.name: t for t in build_tasks(["dish", "cuisine", "foodgroups"], table.vocab)}
    assert tasks["foodgroups"].kind == "multilabel" and len(tasks["foodgroups"].classes) == 10
    assert tasks["cuisine"].classes == ("japanese", "vietnamese", "french")


def test_an_image_in_another_dish_folder_keeps_its_label_and_is_noted(tmp_path):
    root = make_mafood121(tmp_path / "m")
    (root / "annotations" / "val_lbls_d.txt").write_text("1\n1")  # takoyaki/1348805.jpg labelled pho
    table = read_mafood121(root)
    assert rows(table)["takoyaki/1348805.jpg"]["dish"] == "pho"
    assert table.notes == ["1 image(s) sit in a folder other than their dish label's: the label is kept"]


@pytest.mark.parametrize("file, text, line, message", [
    ("test_lbls_ff.txt", "3\n5\n4", 2, "'5' is not an index 0..4 into foodgroups.txt"),
    ("val_lbls_cs.txt", "0\n-1", 2, "'-1' is not an index 0..2 into cuisinestyles.txt"),
    ("train_lbls_d.txt", "0\n1\n2", None, "3 labels for the 4 images of train.txt"),
    ("foodgroups.txt", "ff_egg\nff_eggs,ff_rice", 2, "food group 'eggs' is not in baseIngredients.txt"),
    ("dishes.txt", "d_takoyaki\n\nd_pho", 2, "blank line"),
    ("val.txt", "takoyaki/1348805.jpg\npho/1002382.jpg", 2, "also listed in train.txt, line 2"),
    ("test.txt", "croque_madame/427955.jpg\npho.jpg\ntakoyaki/62_4.jpg", 2, "expected '<folder>/<file>'"),
    ("baseIngredients.txt", "ff_bread, ff_egg\nff_rice", 2, "on one line"),
])
def test_broken_files_are_data_errors_naming_file_and_line(tmp_path, file, text, line, message):
    root = make_mafood121(tmp_path / "m")
    (root / "annotations" / file).write_text(text)
    with pytest.raises(DataError) as caught:
        read_mafood121(root)
    assert caught.value.path == str(root / "annotations" / file) and caught.value.line == line
    assert message in caught.value.what


def test_a_missing_file_names_it_and_how_to_get_the_data(tmp_path):
    root = make_mafood121(tmp_path / "m")
    (root / "annotations" / "cuisinestyles.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"(?s)cuisinestyles.txt is missing.*ub.edu/cvub/mafood121"):
        read_mafood121(root)


def test_a_taxonomy_is_refused_it_would_overwrite_the_cuisine(tmp_path):
    with pytest.raises(ConfigError, match="drop data.taxonomy"):
        sets.load("mafood121", str(make_mafood121(tmp_path / "m")), sets.LoadOptions(taxonomy="food101"))
