"""Ingredients101 read as Food-101's ingredient source, on format-exact miniatures of both."""
from pathlib import Path

import pytest

from foodmtl.data import sets
from foodmtl.data.sets.ingredients101 import read_ingredients101
from foodmtl.errors import DataError
from miniatures_ingredients101 import make_ingredients101


def test_dish_and_class_ingredients_per_image_with_its_splits(tmp_path):
    root = make_ingredients101(tmp_path / "data")
    table = read_ingredients101(root)
    frame = table.frame.set_index(table.frame["image"].map(lambda p: "/".join(Path(p).parts[-2:])))
    assert frame["split"].value_counts().to_dict() == {"train": 6, "test": 4, "val": 3}
    pizza = frame.loc["pizza/102003.jpg"]
    assert (pizza["split"], pizza["dish"], pizza["ingredients"]) == ("test", "pizza",
                                                                     ("flour", "tomato", "cheese", "basil", "oil"))
    assert pizza["image"] == str(root / "food-101" / "images" / "pizza" / "102003.jpg")
    assert table.vocab["dish"] == ["apple_pie", "baklava", "pizza"]


def test_vocabulary_by_frequency_then_first_appearance(tmp_path):
    """Hand count over the simplified lines: sugar, butter, flour in 2 lines each (first seen in that
    order after apple), then the names of one line in order of appearance."""
    table = read_ingredients101(make_ingredients101(tmp_path / "d"))
    assert table.vocab["ingredients"] == ["sugar", "butter", "flour", "apple", "phyllo", "walnut", "honey",
                                          "tomato", "cheese", "basil", "oil"]


def test_raw_list_through_the_load_option(tmp_path):
    root = make_ingredients101(tmp_path / "d")
    table = sets.load("ingredients101", str(root), sets.LoadOptions(ingredient_list="raw"))
    assert len(table.vocab["ingredients"]) == 12 and "tomato sauce" in table.vocab["ingredients"]
    with pytest.raises(ValueError, match="ingredient_list must be one of"):
        sets.load("ingredients101", str(root), sets.LoadOptions(ingredient_list="cleaned"))


def test_a_taxonomy_adds_category_and_cuisine_and_keeps_the_authors_ingredients(tmp_path):
    root = make_ingredients101(tmp_path / "d")
    table = sets.load("ingredients101", str(root), sets.LoadOptions(taxonomy="food101"))
    pizza = table.frame[table.frame["dish"] == "pizza"].iloc[0]
    assert pizza["ingredients"] == ("flour", "tomato", "cheese", "basil", "oil")
    assert isinstance(pizza["category"], str) and isinstance(pizza["cuisine"], str)
    assert table.vocab["ingredients"] == read_ingredients101(root).vocab["ingredients"]


def test_an_unknown_ingredient_list_is_a_config_error_before_any_data_is_read():
    from foodmtl.config import from_dict
    from foodmtl.errors import ConfigError

    with pytest.raises(ConfigError, match="data.ingredient_list='cleaned'; choose one of simplified, raw"):
        from_dict({"data": {"dataset": "ingredients101", "ingredient_list": "cleaned"}})
    with pytest.raises(ConfigError, match=r"data.sources\[0\].ingredient_list='cleaned'"):
        from_dict({"data": {"sources": [{"dataset": "recipes5k", "ingredient_list": "cleaned"}]}})


def test_an_ingredients_file_not_one_line_per_class_is_a_data_error(tmp_path):
    root = make_ingredients101(tmp_path / "d")
    path = root / "Ingredients101" / "Annotations" / "ingredients_simplified.txt"
    path.write_text("apple,sugar\nphyllo,honey\n")
    with pytest.raises(DataError, match="2 ingredient lines for the 3 classes of classes.txt"):
        read_ingredients101(root)


def test_a_label_out_of_range_names_its_line(tmp_path):
    root = make_ingredients101(tmp_path / "d")
    (root / "Ingredients101" / "Annotations" / "val_labels.txt").write_text("0\n1\n3\n")
    with pytest.raises(DataError) as caught:
        read_ingredients101(root)
    assert caught.value.line == 3 and "'3' is not an index 0..2 into classes.txt" in caught.value.what


def test_missing_food101_images_says_how_to_get_both(tmp_path):
    root = make_ingredients101(tmp_path / "d")
    (root / "food-101").rename(root / "food101")
    with pytest.raises(FileNotFoundError, match=r"(?s)food-101/images is missing.*food-101/ and Ingredients101/"):
        read_ingredients101(root)
