"""Builtin taxonomies (coverage, vocabularies, docs) and the join onto a sample table."""
import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from foodmtl.errors import DataError
from foodmtl.data.sets.food101 import read_food101
from foodmtl.data.sets.foodx251 import read_foodx251
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.taxonomy import attach_taxonomy, builtin_ingredients, load_taxonomy, uncovered_dishes
from miniatures import make_food101, make_foodx251

TAXONOMIES = Path(__file__).resolve().parents[1] / "foodmtl" / "data" / "taxonomies"

# meta/classes.txt of Food-101 (ETH Zurich release)
FOOD101_CLASSES = """
    apple_pie baby_back_ribs baklava beef_carpaccio beef_tartare beet_salad beignets bibimbap
    bread_pudding breakfast_burrito bruschetta caesar_salad cannoli caprese_salad carrot_cake ceviche
    cheese_plate cheesecake chicken_curry chicken_quesadilla chicken_wings chocolate_cake
    chocolate_mousse churros clam_chowder club_sandwich crab_cakes creme_brulee croque_madame
    cup_cakes deviled_eggs donuts dumplings edamame eggs_benedict escargots falafel filet_mignon
    fish_and_chips foie_gras french_fries french_onion_soup french_toast fried_calamari fried_rice
    frozen_yogurt garlic_bread gnocchi greek_salad grilled_cheese_sandwich grilled_salmon guacamole
    gyoza hamburger hot_and_sour_soup hot_dog huevos_rancheros hummus ice_cream lasagna
    lobster_bisque lobster_roll_sandwich macaroni_and_cheese macarons miso_soup mussels nachos
    omelette onion_rings oysters pad_thai paella pancakes panna_cotta peking_duck pho pizza pork_chop
    poutine prime_rib pulled_pork_sandwich ramen ravioli red_velvet_cake risotto samosa sashimi
    scallops seaweed_salad shrimp_and_grits spaghetti_bolognese spaghetti_carbonara spring_rolls
    steak strawberry_shortcake sushi tacos takoyaki tiramisu tuna_tartare waffles
""".split()

# class_list.txt of FoodX-251 in id order (github.com/karansikka1/iFood_2019, assets/class_list.txt)
FOODX251_CLASSES = """
    macaron beignet cruller cockle_food samosa tiramisu tostada moussaka dumpling sashimi knish
    croquette couscous porridge stuffed_cabbage seaweed_salad chow_mein rigatoni beef_tartare
    cannoli foie_gras cupcake osso_buco pad_thai poutine ramen pulled_pork_sandwich bibimbap
    chicken_kiev apple_pie risotto fruitcake chop_suey haggis scrambled_eggs frittata scampi sushi
    orzo fritter nacho beef_stroganoff beef_wellington spring_roll savarin crayfish_food souffle
    adobo streusel deviled_egg escargot club_sandwich carrot_cake falafel farfalle terrine
    poached_egg gnocchi bubble_and_squeak egg_roll caprese_salad sauerkraut creme_brulee pavlova
    fondue scallop jambalaya tempura chocolate_cake potpie spaghetti_bolognese sukiyaki applesauce
    baklava salisbury_steak linguine edamame coq_au_vin tamale macaroni_and_cheese kedgeree
    garlic_bread beet_salad steak_tartare vermicelli pate pancake tetrazzini onion_rings
    red_velvet_cake compote lobster_food chicken_curry chicken_wing caesar_salad succotash hummus
    fish_and_chips lasagna lutefisk sloppy_joe gingerbread crab_cake sauerbraten peking_duck
    guacamole ham_sandwich crumpet taco strawberry_shortcake clam_chowder cottage_pie croque_madame
    french_onion_soup beef_carpaccio torte poi crab_food bacon_and_eggs coffee_cake custard
    syllabub pork_chop fried_rice boiled_egg galantine brisket reuben schnitzel ambrosia_food gyoza
    jerky ravioli fried_calamari spaghetti_carbonara miso_soup frozen_yogurt wonton panna_cotta
    french_toast enchilada ceviche fettuccine chili flan kabob sponge_cake casserole paella
    blancmange bruschetta tortellini grilled_salmon french_fries shrimp_and_grits churro donut
    meat_loaf_food meatball scrapple strudel coconut_cake marble_cake filet_mignon hamburger
    fried_egg tuna_tartare penne eggs_benedict bread_pudding takoyaki tenderloin chocolate_mousse
    baked_alaska hot_dog confit ham_and_eggs biryani greek_salad huevos_rancheros tagliatelle
    stuffed_peppers cannelloni pizza sausage_roll chicken_quesadilla hot_and_sour_soup prime_rib
    cheesecake limpet_food ziti mussel manicotti ice_cream waffle oyster omelette clam_food burrito
    roulade lobster_bisque grilled_cheese_sandwich gyro pound_cake pho lobster_roll_sandwich
    baby_back_rib tapenade pepper_steak welsh_rarebit pilaf dolmas coquilles_saint_jacques
    veal_cordon_bleu shirred_egg barbecued_wing lobster_thermidor steak_au_poivre huitre
    chiffon_cake profiterole toad_in_the_hole chicken_marengo victoria_sandwich tamale_pie
    boston_cream_pie fish_stick crumb_cake chicken_provencale vol_au_vent entrecote
    carbonnade_flamande bacon_lettuce_tomato_sandwich scotch_egg pirogi peach_melba
    upside_down_cake applesauce_cake rugulah rock_cake barbecued_spareribs beef_bourguignonne
    rissole mostaccioli apple_turnover matzo_ball chicken_cordon_bleu eccles_cake moo_goo_gai_pan
    buffalo_wing stuffed_tomato
""".split()


def documented(section: str) -> set[str]:
    """Names listed as ``- `name` `` under ``## <section>`` of the taxonomies README."""
    text = (TAXONOMIES / "README.md").read_text()
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `([a-z_]+)`", body, flags=re.MULTILINE))


@pytest.mark.parametrize("name, classes", [("food101", FOOD101_CLASSES), ("foodx251", FOODX251_CLASSES)])
def test_builtin_covers_exactly_the_published_classes(name, classes):
    assert len(classes) == len(set(classes)) == {"food101": 101, "foodx251": 251}[name]
    assert load_taxonomy(name)["dish"].tolist() == classes


@pytest.mark.parametrize("name", ["food101", "foodx251"])
def test_builtin_labels_use_documented_vocabularies(name):
    taxonomy = load_taxonomy(name)
    assert set(taxonomy["category"].dropna()) <= documented("Categories")
    assert set(taxonomy["cuisine"].dropna()) <= documented("Cuisines")
    used = {i for names in taxonomy["ingredients"].dropna() for i in names}
    assert used <= set(builtin_ingredients())
    assert taxonomy["cuisine"].notna().all()


def test_documented_lists_have_the_stated_sizes():
    assert len(documented("Categories")) == 16
    assert len(documented("Cuisines")) == 20


def test_ingredient_vocabulary_is_clean_and_all_used():
    vocabulary = builtin_ingredients()
    assert 100 <= len(vocabulary) <= 200
    assert len(vocabulary) == len(set(vocabulary))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in vocabulary)
    used = {i for name in ("food101", "foodx251") for names in load_taxonomy(name)["ingredients"].dropna()
            for i in names}
    assert set(vocabulary) == used


def test_shared_dish_names_get_the_same_labels_in_both_builtins():
    food101 = load_taxonomy("food101").set_index("dish")
    foodx251 = load_taxonomy("foodx251").set_index("dish")
    shared = food101.index.intersection(foodx251.index)
    assert len(shared) > 50
    assert food101.loc[shared].equals(foodx251.loc[shared])


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_user_csv_parses_empty_cells_and_ingredient_lists(tmp_path):
    csv = write_csv(tmp_path / "mine.csv", "\ufeffdish,category,cuisine,ingredients,notes\n"
                    "nan, soup ,,leek; potato ;\n"
                    "bread,,french,\n")
    taxonomy = load_taxonomy(str(csv))
    assert list(taxonomy.columns) == ["dish", "category", "cuisine", "ingredients"]
    assert taxonomy.to_dict("records") == [
        {"dish": "nan", "category": "soup", "cuisine": None, "ingredients": ("leek", "potato")},
        {"dish": "bread", "category": None, "cuisine": "french", "ingredients": None},
    ]


def test_missing_column_lists_the_expected_header(tmp_path):
    csv = write_csv(tmp_path / "bad.csv", "dish,category,ingredients\npizza,bread_pastry,dough\n")
    with pytest.raises(DataError) as error:
        load_taxonomy(csv)
    assert str(error.value) == (f"{csv}, line 1: missing column(s) ['cuisine']; expected header: "
                                "dish,category,cuisine,ingredients (got dish,category,ingredients)")


def test_duplicate_dish_rows_are_named(tmp_path):
    csv = write_csv(tmp_path / "dup.csv", "dish,category,cuisine,ingredients\n"
                    "pizza,a,b,c\n\nsushi,a,b,c\npizza,x,y,z\n")  # the blank line 3 counts
    with pytest.raises(DataError) as error:
        load_taxonomy(csv)
    assert str(error.value) == f"{csv}, line 5: dish 'pizza' has a second row (first: line 2)"


def test_empty_dish_name_names_its_line(tmp_path):
    csv = write_csv(tmp_path / "empty.csv", "dish,category,cuisine,ingredients\n\npizza,a,b,c\n ,a,b,c\n")
    with pytest.raises(DataError, match=re.escape(f"{csv}, line 4: empty dish name")):
        load_taxonomy(csv)


@pytest.mark.parametrize("text, line, what", [
    ("dish,category,cuisine,ingredients\npizza,a,b,c\nsushi,a,b,c,d\n", 3,
     "malformed CSV: Expected 4 fields, saw 5"),
    ('dish,category,cuisine,ingredients\npizza,a,b,c\n"sushi,a,b,c\n', 3,
     "malformed CSV: a quoted cell starting here is never closed"),
    ("", None, "empty file; expected header dish,category,cuisine,ingredients"),
])
def test_malformed_csv_is_a_data_error_at_its_line(tmp_path, text, line, what):
    csv = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as error:
        load_taxonomy(csv)
    assert (error.value.path, error.value.line, error.value.what) == (str(csv), line, what)


def test_unknown_source_names_path_and_builtins(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_taxonomy(tmp_path / "none.csv")
    assert str(tmp_path / "none.csv") in str(error.value) and "food101, foodx251" in str(error.value)


def test_join_fills_every_row_of_a_fully_covered_data_set(tmp_path):
    table = attach_taxonomy(read_food101(make_food101(tmp_path / "food-101")), load_taxonomy("food101"))
    pizza = table.frame[table.frame["dish"] == "pizza"].iloc[0]
    assert (pizza["category"], pizza["cuisine"]) == ("bread_pastry", "italian")
    assert pizza["ingredients"] == ("dough", "tomato_sauce", "mozzarella")
    assert table.frame[["category", "cuisine", "ingredients"]].notna().all().all()
    assert table.vocab["category"] == sorted({"dessert", "bread_pastry"})
    assert table.vocab["cuisine"] == ["american", "italian", "middle_eastern"]
    order = {name: i for i, name in enumerate(builtin_ingredients())}
    assert table.vocab["ingredients"] == sorted(table.vocab["ingredients"], key=order.__getitem__)
    assert table.vocab["ingredients"] != sorted(table.vocab["ingredients"])


def test_uncovered_dish_stays_unlabelled_and_is_logged(tmp_path, caplog):
    root = make_foodx251(tmp_path / "foodx", classes=("macaron", "not_a_dish"))
    table = read_foodx251(root)
    with caplog.at_level(logging.WARNING, logger="foodmtl.data.taxonomy"):
        joined = attach_taxonomy(table, load_taxonomy("foodx251"))
    assert uncovered_dishes(table, load_taxonomy("foodx251")) == ["not_a_dish"]
    assert "not_a_dish" in caplog.text
    frame = joined.frame
    uncovered = frame[frame["dish"] == "not_a_dish"]
    assert len(uncovered) and uncovered[["category", "cuisine", "ingredients"]].isna().all().all()
    assert frame.loc[frame["dish"] == "macaron", "category"].eq("dessert").all()
    assert frame.loc[frame["split"] == "test", ["category", "ingredients"]].isna().all().all()
    assert joined.vocab["category"] == ["dessert"]


def test_existing_labels_survive_where_the_taxonomy_has_none():
    frame = empty_columns(pd.DataFrame({"image": ["a", "b", "c"], "split": "train",
                                        "dish": ["soup", "cake", "mystery"]}))
    frame["category"] = ["own_soup", "own_cake", "own_mystery"]
    frame["ingredients"] = pd.Series([("leek",), None, ("saffron",)], dtype=object)
    taxonomy = pd.DataFrame({"dish": ["soup", "cake"], "category": [None, "cake"], "cuisine": ["french", None],
                             "ingredients": pd.Series([None, ("flour",)], dtype=object)})
    joined = attach_taxonomy(SampleTable(frame, {"dish": ["soup", "cake", "mystery"]}, ["a quirk the reader handled"]),
                             taxonomy)
    assert joined.notes == ["a quirk the reader handled"]   # verify.py prints them after the join too
    assert joined.frame["category"].tolist() == ["own_soup", "cake", "own_mystery"]
    assert joined.frame["ingredients"].tolist() == [("leek",), ("flour",), ("saffron",)]
    assert joined.frame["cuisine"].tolist() == ["french", None, None]
    assert joined.vocab["category"] == ["cake", "own_mystery", "own_soup"]
    assert joined.vocab["ingredients"] == ["flour", "leek", "saffron"]
