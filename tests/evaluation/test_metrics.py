"""Metrics on fixed predictions: hand-computed values, checked against sklearn too."""

import csv
import io
import math

import numpy as np
import pytest
from sklearn.metrics import classification_report, f1_score, log_loss

from keras_art.evaluation.metrics import (
    bootstrap_ci,
    classification_metrics,
    combined_metrics,
    most_confused_pairs,
    per_class_csv,
)

NAMES = ["Baroque", "Cubism", "Impressionism"]
# 8 labelled rows and one unlabelled (-1) whose confident "Impressionism" must not
# count. Predictions (argmax): 0 0 1 | 1 2 | 2 2 0.
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, -1])
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.6, 0.3, 0.1],
        [0.3, 0.5, 0.2],  # wrong, label second (top-2 hit)
        [0.1, 0.8, 0.1],
        [0.1, 0.4, 0.5],  # wrong, label second (top-2 hit)
        [0.2, 0.2, 0.6],
        [0.1, 0.1, 0.8],
        [0.5, 0.4, 0.1],  # wrong, label last (top-2 miss)
        [0.0, 0.0, 1.0],  # unlabelled
    ]
)
# Per class TP, FP, FN = (2, 1, 1), (1, 1, 1), (2, 1, 1).
HAND_F1 = [2 / 3, 1 / 2, 2 / 3]


def test_classification_metrics_match_hand_computed_values():
    m = classification_metrics(LABELS, PROBS, NAMES, top_k=(1, 2, 5))
    assert m["n"] == 8
    assert m["top1"] == pytest.approx(5 / 8)
    assert m["top2"] == pytest.approx(7 / 8)
    assert m["top5"] == 1.0  # k capped at C = 3, key kept as asked
    assert m["macro_f1"] == pytest.approx(sum(HAND_F1) / 3)  # 11/18
    assert m["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 1 / 2 + 3 * 2 / 3) / 8)
    hand_loss = -np.mean(np.log([0.7, 0.6, 0.3, 0.8, 0.4, 0.6, 0.8, 0.1]))
    assert m["loss"] == pytest.approx(hand_loss)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert [r["class"] for r in m["per_class"]] == NAMES
    assert [r["support"] for r in m["per_class"]] == [3, 2, 3]
    for row, f1 in zip(m["per_class"], HAND_F1, strict=True):
        assert row["precision"] == pytest.approx(f1)  # P = R = F1 in this example
        assert row["recall"] == pytest.approx(f1)
        assert row["f1"] == pytest.approx(f1)


def test_classification_metrics_agree_with_sklearn_on_random_predictions():
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.ones(6), size=200)
    labels = rng.integers(-1, 6, size=200)
    m = classification_metrics(labels, probs, list("abcdef"), top_k=(1, 3))
    keep = labels >= 0
    y, pred = labels[keep], probs[keep].argmax(axis=1)
    assert m["n"] == keep.sum()
    assert m["top1"] == pytest.approx(np.mean(y == pred))
    top3 = np.argsort(-probs[keep], axis=1)[:, :3]
    assert m["top3"] == pytest.approx(np.mean((top3 == y[:, None]).any(axis=1)))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(y, pred, average="weighted"))
    assert m["loss"] == pytest.approx(log_loss(y, probs[keep], labels=range(6)))
    assert m["report_text"] == classification_report(
        y, pred, labels=range(6), target_names=list("abcdef"), digits=4, zero_division=0
    )
    assert np.sum(m["confusion"]) == keep.sum()


def test_default_top_k_reports_top1_and_top5():
    m = classification_metrics(LABELS, PROBS, NAMES)
    assert {k for k in m if k.startswith("top")} == {"top1", "top5"}


def test_class_absent_from_split_has_support_zero_and_leaves_macro_f1_alone():
    probs = np.hstack([PROBS, np.zeros((len(PROBS), 1))])  # never predicted
    m = classification_metrics(LABELS, probs, [*NAMES, "Pop Art"], top_k=(1, 2))
    assert m["per_class"][3] == {
        "class": "Pop Art",
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert np.array(m["confusion"]).shape == (4, 4)
    assert m["macro_f1"] == pytest.approx(sum(HAND_F1) / 3)
    assert m["top2"] == pytest.approx(7 / 8)
    assert "Pop Art" in m["report_text"]


def test_probabilities_not_summing_to_one_are_fine():
    scaled = PROBS * 0.97
    plain = classification_metrics(LABELS, PROBS, NAMES)
    m = classification_metrics(LABELS, scaled, NAMES)
    for key in ("top1", "top5", "macro_f1", "weighted_f1", "loss"):
        assert m[key] == pytest.approx(plain[key])


def test_two_classes_with_top5():
    labels = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.5, 0.5]])
    m = classification_metrics(labels, probs, ["a", "b"])
    assert m["top1"] == pytest.approx(3 / 4)  # the tie goes to class 0, the argmax
    assert m["top5"] == 1.0


def test_no_labelled_rows_raises():
    with pytest.raises(ValueError, match="No labelled rows"):
        classification_metrics(np.array([-1, -1]), PROBS[:2], NAMES)
    with pytest.raises(ValueError, match="No labelled rows"):
        bootstrap_ci(np.array([-1, -1]), PROBS[:2])


def test_bad_inputs_raise_with_the_value():
    with pytest.raises(ValueError, match=r"\[3\]"):
        classification_metrics(np.array([0, 3]), PROBS[:2], NAMES)
    with pytest.raises(ValueError, match="2 class names"):
        classification_metrics(LABELS, PROBS, NAMES[:2])
    with pytest.raises(ValueError, match="top_k"):
        classification_metrics(LABELS, PROBS, NAMES, top_k=(0,))


def _two_task_example():
    # artist: labels all set; style: 3 classes, two rows unlabelled.
    artist = (
        np.array([0, 1, 1, 0]),
        np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]]),
    )
    style = (
        np.array([0, -1, 1, -1]),
        np.array([[0.6, 0.1, 0.3], [0.2, 0.3, 0.5], [0.5, 0.2, 0.3], [0.1, 0.1, 0.8]]),
    )
    # Both tasks have a class called "A": the combined row must keep them apart.
    names = {"artist": ["A", "B"], "style": ["A", "X", "Y"]}
    return {"artist": artist, "style": style}, names


def test_combined_row_matches_its_definition_by_hand():
    per_task, names = _two_task_example()
    c = combined_metrics(per_task, names, top_k=(1, 2))
    assert c["n"] == 6  # labelled (image, task) pairs: 4 + 2
    # Micro over pairs: (3 + 1) / 6, not the mean of the task accuracies (0.625).
    assert c["top1"] == pytest.approx(4 / 6)
    assert c["top2"] == pytest.approx(5 / 6)  # artist 4/4 (capped), style 1/2
    # Per-class F1: artist:A 4/5, artist:B 2/3, style:A 2/3, style:X 0; style:Y is
    # neither labelled nor predicted, so it is not averaged in.
    assert c["macro_f1"] == pytest.approx((4 / 5 + 2 / 3 + 2 / 3 + 0) / 4)
    assert c["weighted_f1"] == pytest.approx((2 * 4 / 5 + 2 * 2 / 3 + 2 / 3) / 6)
    hand_loss = -np.mean(np.log([0.9, 0.8, 0.3, 0.6, 0.6, 0.2]))
    assert c["loss"] == pytest.approx(hand_loss)
    assert "micro" in c["definition"] and "union" in c["definition"]


def test_combined_row_is_consistent_with_the_task_rows():
    per_task, names = _two_task_example()
    rows = {t: classification_metrics(*per_task[t], names[t]) for t in per_task}
    c = combined_metrics(per_task, names)
    n = sum(r["n"] for r in rows.values())
    assert c["top1"] == pytest.approx(
        sum(r["top1"] * r["n"] for r in rows.values()) / n
    )
    assert c["top5"] == 1.0
    assert c["loss"] == pytest.approx(
        sum(r["loss"] * r["n"] for r in rows.values()) / n
    )


def test_combined_row_skips_a_task_without_labels_and_checks_names():
    per_task, names = _two_task_example()
    per_task["style"] = (np.full(4, -1), per_task["style"][1])
    c = combined_metrics(per_task, names)
    assert c["n"] == 4
    assert c["top1"] == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="class names"):
        combined_metrics(per_task, {"artist": ["A", "B"]})


def _bootstrap_example(repeat=1):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=120)
    probs = rng.dirichlet(np.ones(4), size=120)
    probs[np.arange(60), labels[:60]] += 2.0  # half the rows right
    return np.tile(labels, repeat), np.tile(probs, (repeat, 1))


def test_bootstrap_is_reproducible_with_a_seed():
    labels, probs = _bootstrap_example()
    a = bootstrap_ci(labels, probs, n_resamples=300, seed=11)
    b = bootstrap_ci(labels, probs, n_resamples=300, seed=11)
    c = bootstrap_ci(labels, probs, n_resamples=300, seed=12)
    assert a == b
    assert a["top1"] != c["top1"] or a["macro_f1"] != c["macro_f1"]
    assert (a["n_resamples"], a["seed"], a["level"]) == (300, 11, 0.95)


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_rows():
    labels, probs = _bootstrap_example()
    point = classification_metrics(labels, probs, list("abcd"))
    ci = bootstrap_ci(labels, probs, n_resamples=1000, seed=0)
    for key in ("top1", "macro_f1"):
        lo, hi = ci[key]
        assert lo < point[key] < hi
    big = bootstrap_ci(*_bootstrap_example(repeat=9), n_resamples=1000, seed=0)
    for key in ("top1", "macro_f1"):
        # The standard error falls as 1/sqrt(n): 9x the rows, about 1/3 the width.
        width, big_width = np.diff(ci[key])[0], np.diff(big[key])[0]
        assert big_width < 0.5 * width


def test_bootstrap_matches_sklearn_on_the_same_resamples():
    labels, probs = _bootstrap_example()
    with_unlabelled = np.concatenate([labels, [-1, -1]])
    probs_unlabelled = np.vstack([probs, [[1, 0, 0, 0], [0, 1, 0, 0]]])
    ci = bootstrap_ci(with_unlabelled, probs_unlabelled, n_resamples=50, seed=5)
    rng = np.random.default_rng(5)  # the documented protocol, unlabelled rows gone
    pred = probs.argmax(axis=1)
    top1, macro = [], []
    for _ in range(50):
        idx = rng.integers(0, labels.size, size=labels.size)
        top1.append(np.mean(labels[idx] == pred[idx]))
        macro.append(f1_score(labels[idx], pred[idx], average="macro", zero_division=0))
    assert ci["top1"] == pytest.approx(np.quantile(top1, [0.025, 0.975]).tolist())
    assert ci["macro_f1"] == pytest.approx(np.quantile(macro, [0.025, 0.975]).tolist())


def test_most_confused_pairs_order_by_rate_then_count():
    cm = [[6, 2, 2], [1, 1, 0], [0, 3, 3]]
    pairs = most_confused_pairs(cm, ["a", "b", "c"])
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("c", "b", 3),  # 3/6
        ("b", "a", 1),  # 1/2, fewer images
        ("a", "b", 2),  # 2/10
        ("a", "c", 2),  # 2/10, then class order
    ]
    assert pairs[0]["rate"] == pytest.approx(0.5)
    assert pairs[2]["rate"] == pytest.approx(0.2)
    assert len(most_confused_pairs(cm, ["a", "b", "c"], k=2)) == 2


def test_most_confused_pairs_from_classification_metrics():
    m = classification_metrics(LABELS, PROBS, NAMES)
    pairs = most_confused_pairs(m["confusion"], NAMES, k=1)
    assert pairs == [
        {"true": "Cubism", "predicted": "Impressionism", "count": 1, "rate": 0.5}
    ]


def test_per_class_csv_round_trips():
    m = classification_metrics(LABELS, PROBS, NAMES)
    rows = list(csv.DictReader(io.StringIO(per_class_csv(m["per_class"]))))
    assert list(rows[0]) == ["class", "precision", "recall", "f1", "support"]
    assert [r["class"] for r in rows] == NAMES
    assert [int(r["support"]) for r in rows] == [3, 2, 3]
    for row, f1 in zip(rows, HAND_F1, strict=True):
        assert math.isclose(float(row["f1"]), f1, abs_tol=1e-6)
    tagged = [{"task": "style", **r} for r in m["per_class"]]
    rows = list(csv.DictReader(io.StringIO(per_class_csv(tagged))))
    assert list(rows[0])[:2] == ["task", "class"] and rows[0]["task"] == "style"


def test_absent_class_scores_zero_without_warnings():
    """A class the split lacks and the model never predicts: precision, recall and
    F1 are 0 in every output (per_class and the report text), and sklearn's
    UndefinedMetricWarning is not raised for it."""
    import warnings

    probs = np.hstack([PROBS, np.zeros((len(PROBS), 1))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(LABELS, probs, [*NAMES, "Pop Art"])
    row = next(line for line in m["report_text"].splitlines() if "Pop Art" in line)
    assert row.split()[-4:] == ["0.0000", "0.0000", "0.0000", "0"]


def test_one_class_task():
    m = classification_metrics(np.array([0, 0, -1]), np.ones((3, 1)), ["only"])
    assert (m["n"], m["top1"], m["top5"], m["macro_f1"]) == (2, 1.0, 1.0, 1.0)
    assert m["confusion"] == [[2]]


def test_top_k_one_only_and_bad_k_message():
    m = classification_metrics(LABELS, PROBS, NAMES, top_k=(1,))
    assert {k for k in m if k.startswith("top")} == {"top1"}
    with pytest.raises(ValueError, match=r"^top_k values must be >= 1\. Received: "
                       r"top_k=\(0, 2\)$"):  # fmt: skip
        classification_metrics(LABELS, PROBS, NAMES, top_k=(0, 2))


def test_integer_one_hot_predictions_are_accepted():
    """Hard (0/1 integer) predictions give the same scores as float ones; the loss
    clips them to [1e-7, 1 - 1e-7] as Keras does."""
    labels = np.array([0, 1, 1])
    hard = np.array([[1, 0], [0, 1], [1, 0]])
    m = classification_metrics(labels, hard, ["a", "b"])
    assert m["top1"] == pytest.approx(2 / 3)
    assert m["loss"] == pytest.approx(
        (2 * -np.log(1 - 1e-7) + -np.log(1e-7)) / 3, rel=1e-9
    )


def test_loss_of_degenerate_rows():
    """Keras's clipping, by hand: a certain right answer costs -log(1 - 1e-7), a
    zero probability on the label -log(1e-7) (not inf); a row of zeros counts as
    uniform (-log(1/C))."""
    names = list("abcd")
    right = classification_metrics(np.array([0]), np.array([[1.0, 0, 0, 0]]), names)
    assert right["loss"] == pytest.approx(-np.log(1 - 1e-7), rel=1e-6)
    assert right["loss"] > 0
    wrong = classification_metrics(np.array([1]), np.array([[1.0, 0, 0, 0]]), names)
    assert wrong["loss"] == pytest.approx(-np.log(1e-7))
    zeros = classification_metrics(np.array([2]), np.zeros((1, 4)), names)
    assert zeros["loss"] == pytest.approx(np.log(4))


@pytest.mark.parametrize(
    ("labels", "probs", "message"),
    [
        ([0, 1], [0.5, 0.5], r"^probs must be a 2-D array \(N, C\)\. "
                             r"Received: shape=\(2,\)$"),
        ([0, 1], np.zeros((2, 0)), r"^probs must be a 2-D array \(N, C\)\. "
                                   r"Received: shape=\(2, 0\)$"),
        ([0, 1, 2], PROBS[:2], r"^labels must be 1-D with one entry per row of "
                               r"probs\. Received: labels\.shape=\(3,\), "
                               r"probs\.shape=\(2, 3\)$"),
        ([0.5, 1.0], PROBS[:2], r"^labels must be integers\. Received dtype=float64$"),
        ([-2, 0], PROBS[:2], r"^labels must be -1 \(unlabelled\) or in \[0, 3\)\. "
                             r"Received: \[-2\]$"),
        (list(range(3, 9)), np.ones((6, 3)), r"Received: \[3, 4, 5, 6, 7\]$"),
        ([0, 1], [[np.nan, 0, 0], [0, 1, 0]],
         r"^probs contains NaN or infinite values\.$"),
    ],
)  # fmt: skip
def test_bad_inputs_messages(labels, probs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(np.asarray(labels), np.asarray(probs), NAMES)


def test_integral_float_labels_are_accepted():
    m = classification_metrics(np.array([0.0, 1.0, -1.0]), PROBS[[0, 3, 8]], NAMES)
    assert (m["n"], m["top1"]) == (2, 1.0)


def _four_tasks():
    """a: 3 classes, predictions 0 1 1 for labels 0 1 2; b: unlabelled; c: 0 0
    for 0 1; d: 1 1 for 0 1."""

    def onehot(pred, c):
        return np.eye(c)[pred]

    per_task = {
        "a": (np.array([0, 1, 2]), onehot([0, 1, 1], 3)),
        "b": (np.array([-1, -1]), np.ones((2, 1))),
        "c": (np.array([0, 1]), onehot([0, 0], 2)),
        "d": (np.array([0, 1]), onehot([1, 1], 2)),
    }
    names = {"a": ["x", "y", "z"], "b": ["x"], "c": ["x", "y"], "d": ["x", "y"]}
    return per_task, names


def test_combined_keeps_every_task_apart_past_an_unlabelled_task():
    """Seven distinct classes, each with support 1. F1 by hand: a:x 1, a:y 2/3,
    a:z 0, c:x 2/3, c:y 0, d:x 0, d:y 2/3 -> macro = weighted = 3/7. Classes of
    c or d folded onto a's (or each other's) would change it."""
    per_task, names = _four_tasks()
    c = combined_metrics(per_task, names)
    assert c["n"] == 7
    assert c["top1"] == pytest.approx(4 / 7)
    assert c["macro_f1"] == pytest.approx(3 / 7)
    assert c["weighted_f1"] == pytest.approx(3 / 7)
    # A single labelled pair is enough.
    one_pair = {"b": per_task["b"], "c": (np.array([0, -1]), per_task["c"][1])}
    one = combined_metrics(one_pair, {"b": ["x"], "c": ["x", "y"]})
    assert (one["n"], one["top1"]) == (1, 1.0)


def test_combined_errors_name_the_problem():
    per_task, names = _four_tasks()
    with pytest.raises(ValueError, match=r"^combined_metrics needs class names for "
                       r"exactly the tasks given\. Received: tasks=\['a', 'b', 'c', "
                       r"'d'\], class_names=\['a'\]$"):  # fmt: skip
        combined_metrics(per_task, {"a": names["a"]})
    with pytest.raises(ValueError, match="probs has 3 columns but there are 2 class"):
        combined_metrics(per_task, {**names, "a": ["x", "y"]})
    unlabelled = {t: (np.full(2, -1), np.ones((2, 1))) for t in ("b", "e")}
    with pytest.raises(ValueError, match=r"^No labelled rows in any task "
                       r"\(\['b', 'e'\]\): every label is -1\.$"):  # fmt: skip
        combined_metrics(unlabelled, {"b": ["x"], "e": ["x"]})


def test_bootstrap_defaults_and_parameter_checks():
    labels, probs = _bootstrap_example()
    ci = bootstrap_ci(labels, probs)
    assert (ci["n_resamples"], ci["seed"], ci["level"]) == (1000, 0, 0.95)
    assert ci == bootstrap_ci(labels, probs, n_resamples=1000, seed=0, level=0.95)
    one = bootstrap_ci(labels, probs, n_resamples=1)
    assert one["top1"][0] == one["top1"][1]  # one resample: a point
    with pytest.raises(ValueError, match=r"^n_resamples must be >= 1\. "
                       r"Received: n_resamples=0$"):  # fmt: skip
        bootstrap_ci(labels, probs, n_resamples=0)
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"^level must be in \(0, 1\)\. "
                           rf"Received: level={level}$"):  # fmt: skip
            bootstrap_ci(labels, probs, level=level)


def test_bootstrap_with_rare_and_absent_classes_matches_sklearn():
    """Tiny data: resamples often hold a class once (a lone false positive or
    false negative) or not at all, and class 3 is never labelled or predicted."""
    labels = np.array([0, 0, 1, 2, 2, 0])
    probs = np.eye(4)[[0, 1, 1, 2, 0, 0]]
    ci = bootstrap_ci(labels, probs, n_resamples=200, seed=2, level=0.8)
    rng = np.random.default_rng(2)
    pred = probs.argmax(axis=1)
    macro = []
    for _ in range(200):
        idx = rng.integers(0, labels.size, size=labels.size)
        macro.append(f1_score(labels[idx], pred[idx], average="macro", zero_division=0))
    assert ci["macro_f1"] == pytest.approx(np.quantile(macro, [0.1, 0.9]).tolist())


def test_most_confused_pairs_tie_breaks_and_checks():
    # Equal rates 1/2: the larger count first, even from a later class.
    cm = [[2, 2, 0], [1, 1, 0], [0, 0, 1]]
    pairs = most_confused_pairs(cm, ["a", "b", "c"])
    assert [(p["true"], p["predicted"]) for p in pairs] == [("a", "b"), ("b", "a")]
    # Equal rates and counts: the earlier true class first (not the predicted).
    cm = [[1, 0, 1], [1, 1, 0], [0, 0, 1]]
    pairs = most_confused_pairs(cm, ["a", "b", "c"])
    assert [(p["true"], p["predicted"]) for p in pairs] == [("a", "c"), ("b", "a")]
    assert most_confused_pairs(cm, ["a", "b", "c"], k=0) == []
    # The default keeps 10 of the 12 confused cells of a 4-class matrix.
    assert len(most_confused_pairs(np.ones((4, 4)), list("abcd"))) == 10
    assert most_confused_pairs(cm, ["a", "b", "c"], k=-1) == []
    message = (
        r"^confusion must be \(C, C\) with C = len\(class_names\)\. "
        r"Received: shape=\(2, 3\), len\(class_names\)=2$"
    )
    with pytest.raises(ValueError, match=message):
        most_confused_pairs([[1, 0, 0], [0, 1, 0]], ["a", "b"])
    with pytest.raises(ValueError, match=r"shape=\(3,\)"):
        most_confused_pairs([1, 0, 0], ["a", "b", "c"])


def test_per_class_csv_exact_text():
    row = {"class": "Baroque", "precision": 2 / 3, "recall": 0.5, "f1": 4 / 7,
           "support": 3}  # fmt: skip
    assert per_class_csv([row]) == (
        "class,precision,recall,f1,support\nBaroque,0.666667,0.500000,0.571429,3\n"
    )
    assert per_class_csv([{"task": "style", **row}]) == (
        "task,class,precision,recall,f1,support\n"
        "style,Baroque,0.666667,0.500000,0.571429,3\n"
    )
    assert per_class_csv([]) == "class,precision,recall,f1,support\n"


def _sklearn_scores(y, pred):
    from sklearn.metrics import precision_score, recall_score

    out = {}
    for average in ("macro", "weighted"):
        for name, score in (
            ("precision", precision_score),
            ("recall", recall_score),
            ("f1", f1_score),
        ):
            out[f"{average}_{name}"] = score(y, pred, average=average, zero_division=0)
    return out


def test_precision_and_recall_match_sklearn_with_absent_classes():
    # Class 4 never occurs, class 3 is never predicted, class 5 only predicted.
    rng = np.random.default_rng(4)
    labels = rng.choice([0, 1, 2, 3], size=150)
    probs = rng.dirichlet(np.ones(6), size=150)
    probs[:, 3] = probs[:, 4] = 0.0
    probs[labels == 0, 5] += 0.3
    m = classification_metrics(labels, probs, list("abcdef"))
    expected = _sklearn_scores(labels, probs.argmax(axis=1))
    for key, value in expected.items():
        assert m[key] == pytest.approx(value), key
    assert m["weighted_recall"] == pytest.approx(m["top1"])


def test_bootstrap_precision_recall_f1_match_sklearn_on_the_same_resamples():
    labels, probs = _bootstrap_example()
    probs[:10, 3] += 5.0  # some wrong "3"s: precision differs from recall
    # Two more classes: "4" never labelled nor predicted (left out of the macro
    # averages), "5" never labelled but predicted on a few rows.
    probs = np.hstack([probs, np.zeros((len(probs), 2))])
    probs[60:66, 5] = 9.0
    ci = bootstrap_ci(labels, probs, n_resamples=40, seed=9)
    rng = np.random.default_rng(9)
    pred = probs.argmax(axis=1)
    draws: dict[str, list] = {}
    for _ in range(40):
        idx = rng.integers(0, labels.size, size=labels.size)
        for key, value in _sklearn_scores(labels[idx], pred[idx]).items():
            draws.setdefault(key, []).append(value)
    assert set(draws) | {"top1"} <= set(ci)
    for key, values in draws.items():
        assert ci[key] == pytest.approx(np.quantile(values, [0.025, 0.975])), key
