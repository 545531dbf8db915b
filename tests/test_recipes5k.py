"""Recipes5k reader on a format-exact miniature whose quirks must become notes, not crashes."""
from pathlib import Path

import pytest

from foodmtl.data import sets
from foodmtl.data.sets.recipes5k import read_recipes5k
from foodmtl.errors import DataError
from miniatures_recipes5k import make_recipes5k


def test_per_recipe_ingredients_and_quirks_as_notes(tmp_path):
    root = make_recipes5k(tmp_path / "Recipes5k")
    table = read_recipes5k(root)
    frame = table.frame.set_index(table.frame["image"].map(lambda p: Path(p).name))
    assert frame.loc["1_apple_pie_kahlua.jpg", "ingredients"] == ("apple", "kahlúa", "sugar")
    assert frame.loc["0_margherita_pizza.jpg", "split"] == "test"
    assert frame.loc["0_dutch_apple_pie.jpg", "image"] == str(root / "images" / "apple_pie" / "0_dutch_apple_pie.jpg")
    assert table.notes == [
        "ingredients_simplified_Recipes5k.txt: CRLF line ends (read like LF)",
        "ingredients_simplified_Recipes5k.txt: 1 line(s) name an ingredient twice: kept once",
        "ingredients_simplified_Recipes5k.txt: 1 name(s) hold literal \\uXXXX text: decoded",
        "1 image(s) in folders named unlike Food-101's class (cupcakes): dish set to Food-101's name"]


def test_dish_is_the_query_folder_under_food101_names(tmp_path):
    table = read_recipes5k(make_recipes5k(tmp_path / "r", crlf=False))
    assert table.vocab["dish"] == ["apple_pie", "cup_cakes", "pizza"]
    assert table.frame.set_index("dish").loc["cup_cakes", "ingredients"] == ("flour", "sugar", "egg", "vanilla")
    assert not any("CRLF" in note for note in table.notes)


def test_vocabulary_by_frequency_then_first_appearance(tmp_path):
    """Hand count over the simplified lines: sugar in 3 recipes, apple and flour in 2, then the rest."""
    table = read_recipes5k(make_recipes5k(tmp_path / "r"))
    assert table.vocab["ingredients"] == ["sugar", "apple", "flour", "butter", "kahlúa", "egg", "vanilla",
                                          "dough", "tomato", "mozzarella", "basil"]


def test_raw_lists_through_the_load_option(tmp_path):
    table = sets.load("recipes5k", str(make_recipes5k(tmp_path / "r")), sets.LoadOptions(ingredient_list="raw"))
    assert "unsalted butter" in table.vocab["ingredients"]
    assert table.notes[0] == "ingredients_Recipes5k.txt: CRLF line ends (read like LF)"


def test_a_label_past_the_last_recipe_names_its_line(tmp_path):
    root = make_recipes5k(tmp_path / "r")
    (root / "annotations" / "train_labels.txt").write_text("0\n4\n")
    with pytest.raises(DataError) as caught:
        read_recipes5k(root)
    assert caught.value.line == 2
    assert "'4' is not an index 0..3 into ingredients_simplified_Recipes5k.txt" in caught.value.what
