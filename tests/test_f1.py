"""The one F1-from-confusion formula against scikit-learn's on the same labels."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score

from keras_art.f1 import f1_scores


@pytest.mark.parametrize("seed", range(5))
def test_f1_scores_match_sklearn_with_absent_classes(seed):
    rng = np.random.default_rng(seed)
    # Six classes, of which labels use 0-3 and predictions 1-4: class 5 never shows
    # (left out of the macro mean), class 0 is never predicted, class 4 never true.
    y = rng.integers(0, 4, size=60)
    pred = rng.integers(1, 5, size=60)
    cm = confusion_matrix(y, pred, labels=range(6))
    macro, weighted = f1_scores(cm)
    assert macro == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert weighted == pytest.approx(
        f1_score(y, pred, average="weighted", zero_division=0)
    )


def test_f1_scores_of_an_empty_matrix_are_zero():
    assert f1_scores(np.zeros((3, 3))) == (0.0, 0.0)
