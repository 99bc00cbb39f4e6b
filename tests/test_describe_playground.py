"""The playground's text alternatives against numbers worked out by hand (tests/test_page_playground.py checks them
on a real run's view, as the page draws them)."""
from __future__ import annotations

import numpy as np
import pytest

from vitviz.describe import playground as describe
from vitviz.i18n import set_language


@pytest.fixture(autouse=True)
def english():
    set_language("en")


def test_curves_quote_the_last_evaluation_and_the_loss_from_the_first():
    steps = np.array([0, 10, 600])
    text = describe.curves(steps, np.array([np.nan, 0.4, 0.954]), np.array([0.25, 0.5, 0.912]),
                           np.array([1.386, 1.1, 0.21]))
    assert text == "After 600 steps, validation accuracy 91 %, train 95 %; validation loss fell from 1.39 to 0.21."
    rising = describe.curves(steps, np.array([np.nan, 0.3, 0.3]), np.array([0.25, 0.26, 0.27]),
                             np.array([1.0, 1.2, 1.5]))
    assert rising.endswith("validation loss went from 1.00 to 1.50.")
    start = describe.curves(np.array([0]), np.array([np.nan]), np.array([0.25]), np.array([1.386]))
    assert start == "At step 0, before any training, validation accuracy 25 %; validation loss 1.39."


def test_confusion_names_the_most_confused_pair():
    matrix = np.array([[50, 2, 0], [9, 40, 1], [0, 3, 45]])
    text = describe.confusion(matrix, ["square", "circle", "cross"])
    # 135 of 150 on the diagonal; the largest off-diagonal count is 9 circles taken for squares
    assert text == ("Confusion matrix of 150 validation images, true class by row, predicted by column: 135 on the "
                    "diagonal (90 %). Most confused: 9 “circle” images taken for “square”.")
    assert describe.confusion(np.diag([3, 4]), ["a", "b"]).endswith("No image is mistaken.")


def test_grid_likeness_tracks_the_number_over_steps():
    text = describe.grid_likeness(np.array([0, 100, 200]), np.array([0.02, 0.71, 0.64]), (4, 4), "learned")
    assert "grid-likeness 0.64 at step 200" in text
    assert "It was 0.02 at step 0; the highest so far is 0.71 at step 100." in text
    assert text.endswith("Neighbouring positions are the most alike: the grid is visible.")
    assert "unordered set" in describe.grid_likeness(np.array([0]), np.array([np.nan]), (4, 4), "none")


def test_mistakes_and_examples():
    assert describe.mistakes(["circle", "cross"], ["square", "circle"], [0.93, 0.6]) == (
        "The 2 worst mistakes, most confident first: “circle” taken for “square” (93 % sure); “cross” taken for "
        "“circle” (60 % sure).")
    assert describe.examples("Where is it?", ["top left", "top left", "bottom right"]) == (
        "3 example images of the task “Where is it?”, each with its label under it: 2 “top left”, 1 “bottom right”.")


def test_attention_names_where_each_head_looks():
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0] = 1.0  # head 1: all on the top left patch
    maps[1] = 1 / 16  # head 2: even
    text = describe.attention(maps, "top left")
    assert text.startswith("CLS attention on a validation image labelled “top left”, one panel per head; head 1: ")
    assert "100 % of the attention on 1 of 16 patches, rows 0, columns 0 (the top left)" in text
    assert "head 2: the attention spread almost evenly over the 16 patches" in text

