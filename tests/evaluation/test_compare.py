"""`compare` on finished runs and groups written by the real report writer (no
model: `compare_fixtures.make_run`), and ``python -m keras_art.compare``'s output
and its one-line refusals."""

import json
import shutil

import numpy as np
import pytest

from keras_art.compare import main
from keras_art.errors import ParameterError
from keras_art.evaluation import compare, compare_runs
from keras_art.evaluation.compare_plots import stage_changes
from keras_art.evaluation.compare_table import fmt_p
from keras_art.run_dir import RunDir
from tests.evaluation.compare_fixtures import (
    BOOTSTRAP,
    CLASSES,
    labels_for,
    make_group,
    make_run,
    probabilities,
    write_report,
)

N = 64


def fake_measure(model_cfg, num_classes, image_size):
    """Parameters and GFLOPs without building a ResNet50 (seconds per model)."""
    params = {"gap": 1_000_000, "spp": 2_500_000}.get(model_cfg.head, 3_000_000)
    return {"params": params + num_classes["artist"], "gflops": image_size / 100}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    labels = labels_for(N)
    out = {"labels": labels, "root": root}
    out["a"] = make_run(root / "gap-a", labels, probabilities(labels, 0.5, seed=1))
    out["b"] = make_run(
        root / "spp-b", labels, probabilities(labels, 0.85, seed=2), head="spp",
        stages=("frozen", "frozen", "unfrozen"), fit_s=30.0,
    )  # fmt: skip
    out["group"] = make_group(root / "gap-seeds", labels, [0.6, 0.7, 0.65])
    out["one"] = make_group(root / "one-seed", labels, [0.6])
    other_files = [f"other/{i:03d}.jpg" for i in range(N)]
    out["other_split"] = make_run(
        root / "other-split", labels, probabilities(labels, 0.5, 3), files=other_files
    )
    return out


def run_compare(paths, tmp_path, **kwargs):
    kwargs.setdefault("bootstrap", BOOTSTRAP)
    return compare(paths, out=tmp_path / "cmp", measure=fake_measure, **kwargs)


@pytest.fixture(scope="module")
def three(runs, tmp_path_factory):
    """Two runs and a group, compared once (figures drawn): the result and its
    folder."""
    folder = tmp_path_factory.mktemp("three")
    return run_compare([runs["a"], runs["b"], runs["group"]], folder), folder / "cmp"


@pytest.fixture
def no_figures(monkeypatch):
    monkeypatch.setattr(compare_runs, "_figures", lambda *args: {})


def report_numbers(run: RunDir) -> dict:
    return json.loads(run.eval_metrics("test").read_text())["per_task"]["artist"]


def test_two_runs_table_equals_their_reports_and_mcnemar_counts(runs, three):
    result, folder = three
    t = result["tasks"]["artist"]
    assert t["n"] == N and t["classes"] == CLASSES
    for entry, run in zip(t["entries"], (runs["a"], runs["b"]), strict=False):
        own = report_numbers(run)
        for key in ("top1", "macro_f1", "weighted_f1"):
            assert entry["mean"][key] == pytest.approx(own[key], abs=1e-12), key
        assert entry["mean"]["topk"] == pytest.approx(own["top5"], abs=1e-12)
        assert entry["ci"]["top1"] == own["bootstrap"]["top1"]
        assert entry["ci"]["macro_f1"] == own["bootstrap"]["macro_f1"]
        assert entry["sd"] is None and entry["repeats"] == 1
    # McNemar's counts by hand from the two runs' predictions.
    y = runs["labels"]
    right = [
        np.load(r.eval_predictions("test"))["probs/artist"].argmax(1) == y
        for r in (runs["a"], runs["b"])
    ]
    test = t["tests"][0]
    assert (test["entry"], test["baseline"]) == ("spp-b", "gap-a")
    top1 = test["top1"]
    assert top1["a_only"] == int((right[0] & ~right[1]).sum())
    assert top1["b_only"] == int((~right[0] & right[1]).sum())
    assert top1["method"].startswith("McNemar")
    assert top1["difference"] == pytest.approx(right[1].mean() - right[0].mean())
    assert test["macro_f1"]["method"] == "paired bootstrap"
    assert test["macro_f1"]["p_value"] < 0.05  # 0.5 vs 0.85 accuracy on 64 images
    facts = result["facts"]
    assert facts[0]["params"]["mean"] == 1_000_004
    assert facts[1]["train_s"]["mean"] == 30.0
    assert facts[1]["images_per_s"]["mean"] == pytest.approx(N / 0.25, rel=0.01)
    saved = json.loads((folder / "comparison.json").read_text())
    assert saved["tasks"]["artist"]["tests"] == json.loads(json.dumps(t["tests"]))
    names = {p.name for p in folder.iterdir()}
    assert {"report.md", "report.html", "curves.png", "f1_deltas.png"} <= names
    assert {"confusion_1.png", "confusion_2.png", "confusion_3.png"} <= names


def test_command_prints_the_table_and_p_values(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compare_runs, "entry_facts", _facts_without_build)
    out = tmp_path / "cmp"
    code = main(
        [str(runs["a"]), str(runs["b"]), "--out", str(out), "--bootstrap", "200"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    result = json.loads((out / "comparison.json").read_text())
    test = result["tasks"]["artist"]["tests"][0]
    assert "Paired tests against gap-a" in printed
    assert fmt_p(test["top1"]["p_value"]) in printed
    assert fmt_p(test["macro_f1"]["p_value"]) in printed
    assert f"{test['macro_f1']['difference']:+.3f}" in printed
    own = report_numbers(runs["b"])
    assert f"{own['top1']:.3f}" in printed and f"{own['macro_f1']:.3f}" in printed
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for text in (html, md):
        assert "Paired tests against the baseline" in text
        assert f"{own['weighted_f1']:.3f}" in text
    assert html.count("data:image/png;base64,") == 4  # curves, deltas, 2 matrices


def _facts_without_build(entries, measure=None):
    from keras_art.evaluation.compare_costs import entry_facts

    return entry_facts(entries, fake_measure)


def test_a_group_shows_mean_sd_and_pooled_interval(runs, three, no_figures, tmp_path):
    result, folder = three
    t = result["tasks"]["artist"]
    group = t["entries"][2]
    own = [report_numbers(r) for r in runs["group"].runs()]
    top1 = [m["top1"] for m in own]
    assert group["repeats"] == 3 and group["group"]
    assert group["mean"]["top1"] == pytest.approx(np.mean(top1))
    assert group["sd"]["top1"] == pytest.approx(np.std(top1, ddof=1))
    f1 = [m["macro_f1"] for m in own]
    assert group["sd"]["macro_f1"] == pytest.approx(np.std(f1, ddof=1))
    lo, hi = group["ci"]["top1"]
    assert lo < group["mean"]["top1"] < hi
    assert [r["report_ci"]["top1"] for r in group["per_repeat"]] == [
        m["bootstrap"]["top1"] for m in own
    ]
    test = t["tests"][1]  # a group on one side: the bootstrap, not McNemar
    assert test["top1"]["method"] == "paired bootstrap" and "a_only" not in test["top1"]
    assert "welch_p_value" not in test["macro_f1"]
    assert result["entries"][2]["seeds"] == [0, 1, 2]
    html = (folder / "report.html").read_text()
    assert "Repeats of gap-seeds" in html and "\u00b1" in html
    alone = run_compare([runs["group"]], tmp_path / "alone")
    assert alone["tasks"]["artist"]["tests"] == []
    assert alone["tasks"]["artist"]["entries"][0]["mean"] == group["mean"]


def test_layouts_follow_the_seeds_tables(runs, three):
    from keras_art.evaluation.compare_table import layout_tables

    result, _ = three
    ((title, table),) = layout_tables("seed002", result, "artist")
    assert title == "Table 1"
    assert table.header == ["Model", "Dense 1", "Dense 2", "Top 1", "Top 5", "F1"]
    # Grouped by head, the head's first model given as its baseline, then by F1.
    assert [row[0] for row in table.rows] == [
        "GAP: gap-a",
        "1: gap-seeds",
        "SPP: spp-b",
    ]
    assert table.rows[0][1:3] == ["16", "8"]  # the smoke preset's dense blocks
    tables = dict(layout_tables("seed004", result, "artist"))
    metrics = tables["Metrics (weighted averages)"]
    assert metrics.header == ["Model", "Accuracy", "Precision", "Recall", "F1"]
    assert metrics.rows[0][1] == metrics.rows[0][3]  # weighted recall = accuracy
    assert tables["Models"].header[2:] == ["Parameters", "Model Size", "GFLOPs"]


def test_seed002_table_is_grouped_by_head_baseline_first_then_by_f1():
    from keras_art.evaluation.compare_table import layout_tables

    def entry(name, f1):
        scores = {"top1": f1 + 0.1, "topk": 0.9, "macro_f1": f1}
        return {"name": name, "mean": scores, "sd": None,
                "ci": {k: [v - 0.05, v + 0.05] for k, v in scores.items()}}  # fmt: skip

    heads = [("spp-base", "spp", []), ("gap-base", "gap", []), ("spp-1", "spp", [384]),
             ("gap-1", "gap", [448, 160]), ("spp-2", "spp", [320, 64])]  # fmt: skip
    f1s = [0.80, 0.85, 0.82, 0.84, 0.86]
    scored = [entry(n, f) for (n, _, _), f in zip(heads, f1s, strict=True)]
    result = {
        "top_k": 2,
        "facts": [],
        "entries": [{"head": h, "dense_units": d} for _, h, d in heads],
        "tasks": {"artist": {"entries": scored}},
    }
    ((_, table),) = layout_tables("seed002", result, "artist")
    assert [row[:3] for row in table.rows] == [
        ["SPP: spp-base", "Base", "Base"],
        ["1: spp-2", "320", "64"],
        ["2: spp-1", "384", "\u2014"],
        ["GAP: gap-base", "Base", "Base"],
        ["1: gap-1", "448", "160"],
    ]
    assert table.rows[1][5] == "0.860 [0.810, 0.910]"


def test_seed002_layout_shows_top_2(runs, tmp_path, no_figures):
    result = run_compare([runs["a"], runs["b"]], tmp_path, layout="seed002")
    assert result["top_k"] == 2
    for entry, run in zip(
        result["tasks"]["artist"]["entries"], (runs["a"], runs["b"]), strict=True
    ):
        probs = np.load(run.eval_predictions("test"))["probs/artist"]
        top2 = np.argsort(-probs, axis=1)[:, :2]
        want = (top2 == runs["labels"][:, None]).any(axis=1).mean()
        assert entry["mean"]["topk"] == pytest.approx(want)
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "| Model | Dense 1 | Dense 2 | Top 1 | Top 2 | F1 |" in md


def test_a_run_without_a_report_is_evaluated_first(
    runs, tmp_path, monkeypatch, no_figures
):
    labels = runs["labels"]
    probs = probabilities(labels, 0.7, seed=9)
    bare = make_run(tmp_path / "bare", labels, probs, report=False)
    calls = []

    def fake_evaluate(run, split):
        calls.append((RunDir(run).name, split))
        from keras_art.models.model_record import read_model_record

        files = [r["file"] for r in RunDir(run).read_splits()]
        write_report(RunDir(run), read_model_record(run), files, labels, probs)

    monkeypatch.setattr(compare_runs, "_evaluate", fake_evaluate)
    result = run_compare([runs["a"], bare], tmp_path)
    assert calls == [("bare", "test")]
    assert result["tasks"]["artist"]["entries"][1]["mean"]["top1"] == pytest.approx(
        (probs.argmax(1) == labels).mean()
    )


@pytest.mark.parametrize(
    "case, words",
    [
        ("unknown", ["no-such-run: no such run or group"]),
        ("different_split", ["gap-a", "other-split", "different --split test images"]),
        ("one_run_group", ["one-seed", "a group with one run"]),
        ("single_run", ["gap-a", "one run has nothing to compare"]),
        ("twice", ["given twice"]),
        ("out_with_files", ["--out", "holds other files"]),
        ("corrupt_predictions", ["corrupt", "unreadable predictions"]),
        ("top_k_0", ["--top-k 0: pass a positive integer"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, case, words):
    a, root = str(runs["a"]), runs["root"]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(runs["b"].path, corrupt)
    cut = corrupt / "eval" / "test" / "predictions.npz"
    cut.write_bytes(cut.read_bytes()[:100])  # a copy cut short
    argv = {
        "unknown": [a, str(root / "no-such-run")],
        "different_split": [a, str(runs["other_split"])],
        "one_run_group": [a, str(runs["one"])],
        "single_run": [a],
        "twice": [a, a],
        "out_with_files": [a, str(runs["b"]), "--out", str(busy)],
        "corrupt_predictions": [a, str(corrupt)],
        "top_k_0": [a, str(runs["b"]), "--top-k", "0"],
    }[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for word in words:
        assert word in err, err
    assert "Traceback" not in err
    assert (busy / "notes.txt").read_text() == "mine"


def test_library_errors_name_parameters(runs):
    with pytest.raises(ParameterError, match=r"^runs: .*other-split") as info:
        compare([runs["a"], runs["other_split"]], measure=fake_measure)
    assert "split test" in str(info.value) and "--" not in str(info.value)
    with pytest.raises(ParameterError, match="^layout seed999"):
        compare([runs["a"], runs["b"]], layout="seed999")


def test_stage_changes_whatever_the_stage_type():
    rows = [
        {"epoch": str(e), "stage": s} for e, s in enumerate(["1", "1", "2", "2"], 1)
    ]
    assert stage_changes(rows) == [(3, "1", "2")]
    named = ["head", "head", "backbone from conv3", "all layers", "all layers"]
    rows = [{"epoch": str(e), "stage": s} for e, s in enumerate(named, 1)]
    assert [c[0] for c in stage_changes(rows)] == [3, 4]
    assert stage_changes([{"epoch": "1"}, {"epoch": "2"}]) == []  # no stage column
