"""Class names across collections: accents, Unicode forms, case and separators."""

import unicodedata

import pytest

from keras_art.evaluation.name_matching import match_classes, normalise_class_name

DURER_NFD = unicodedata.normalize("NFD", "Albrecht Dürer")


def test_durer_in_every_spelling_is_one_name():
    assert DURER_NFD != "Albrecht Dürer"  # really decomposed
    spellings = [
        "Albrecht_Dürer",
        "albrecht-durer",
        DURER_NFD,
        "ALBRECHT  DURER",
        " Albrecht__-Dürer ",
    ]
    assert {normalise_class_name(s) for s in spellings} == {"albrecht durer"}


def test_renoir_hyphen_underscore_and_spaces():
    assert normalise_class_name("Pierre-Auguste_Renoir") == "pierre auguste renoir"
    assert normalise_class_name("pierre auguste renoir") == "pierre auguste renoir"


def test_letters_without_combining_marks_and_apostrophes():
    assert normalise_class_name("Józef_Chełmoński") == "jozef chelmonski"
    assert normalise_class_name("Georgia O\u2019Keeffe") == "georgia okeeffe"
    assert normalise_class_name("georgia-o'keeffe") == "georgia okeeffe"
    assert normalise_class_name("Art_Nouveau_(Modern)") == "art nouveau modern"


def test_match_classes_maps_and_lists_the_left_out():
    model = ["Albrecht_Durer", "Claude_Monet", "Pierre-Auguste_Renoir", "Vincent"]
    data = [
        "pierre auguste renoir",
        DURER_NFD,
        "Frida_Kahlo",
        "Albrecht_Dürer",  # a second folder for the same artist
        "",
    ]
    out = match_classes(model, data)
    assert out["mapping"] == {0: 2, 1: 0, 3: 0}
    assert out["matched"] == [
        ("pierre auguste renoir", "Pierre-Auguste_Renoir"),
        (DURER_NFD, "Albrecht_Durer"),
        ("Albrecht_Dürer", "Albrecht_Durer"),
    ]
    assert out["unmatched_data"] == ["Frida_Kahlo", ""]
    assert out["unmatched_model"] == ["Claude_Monet", "Vincent"]


def test_match_classes_with_nothing_in_common():
    out = match_classes(["a", "b"], ["c"])
    assert out == {
        "mapping": {},
        "matched": [],
        "unmatched_data": ["c"],
        "unmatched_model": ["a", "b"],
    }


def test_model_classes_that_collide_raise():
    with pytest.raises(ValueError, match="albrecht durer"):
        match_classes(["Albrecht_Dürer", "albrecht durer"], ["Albrecht Durer"])
