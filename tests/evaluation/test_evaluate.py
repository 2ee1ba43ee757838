"""`evaluate` end to end on a tiny finished multi-task run (the smoke preset)."""

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import f1_score

from keras_art.data.pipeline.decode import decode_and_resize_for_eval
from keras_art.errors import UserError
from keras_art.evaluation import evaluate
from keras_art.evaluation.calibration import calibration_metrics
from keras_art.evaluation.evaluate_run import split_rows
from keras_art.evaluation.predictions import forward_pass
from keras_art.models.calibration import apply_temperature, fit_temperature
from keras_art.models.model_record import read_model_record
from keras_art.models.run_reader import load_run_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(smoke_multi_run):
    return smoke_multi_run


def test_full_report_and_numbers_match_sklearn(run):
    result = evaluate(run, split="test", tta=True, audit=True, gradcam=2)
    out = run / "eval" / "test"
    for name in (
        "metrics.json",
        "classification_report.txt",
        "per_class.csv",
        "curves.png",
        "label_audit.csv",
        "report.md",
        "report.html",
    ):
        assert (out / name).stat().st_size > 0, name
    for task in ("artist", "genre", "style"):
        assert (out / f"confusion_matrix_{task}.png").stat().st_size > 0
        assert (out / f"top_losses_{task}.png").stat().st_size > 0
        assert (out / f"reliability_{task}.png").stat().st_size > 0
    assert len(list((out / "gradcam").glob("*.png"))) == 2
    assert json.loads((out / "metrics.json").read_text()) == json.loads(
        json.dumps(result)
    )
    assert set(result["per_task"]) == {"artist", "genre", "style"}
    assert "combined" in result and result["tta"]["flip"]
    for m in result["per_task"].values():
        assert {"mean", "vote"} <= set(m["tta"])
        lo, hi = m["bootstrap"]["top1"]
        assert lo <= m["top1"] <= hi

    # The numbers are sklearn's on the model's own predictions.
    record = read_model_record(run)
    rows = split_rows(run, record, "test")
    model = load_run_model(run)
    preds = forward_pass(
        model,
        rows.files,
        image_size=record.image_size,
        resize_mode=record.eval_resize,
        tasks=record.tasks,
    )
    for task in record.tasks:
        pred = preds.probs[task].argmax(axis=1)
        _assert_top1_and_macro_f1(result["per_task"][task], rows.labels[task], pred)
    _assert_calibration(run, result, record, rows, preds)

    # TTA: every size of seed 002's scales at 32 px, plain and mirrored, through the
    # model here; mean of the six views, and a hand count of their argmax votes.
    size = record.image_size
    sizes = [size, round(size * 260 / 224), round(size * 296 / 224)]
    assert result["tta"] == {"flip": True, "sizes": sizes}
    views = []
    for s in sizes:
        images = np.stack(
            [
                decode_and_resize_for_eval(tf.io.read_file(f), s, record.eval_resize)
                for f in rows.files
            ]
        )
        for x in (images, images[:, :, ::-1]):  # plain, mirrored left-right
            views.append(model(x, training=False))
    tta = forward_pass(
        model,
        rows.files,
        image_size=size,
        resize_mode=record.eval_resize,
        tasks=record.tasks,
        tta_sizes=sizes,
        tta_flip=True,
    )
    for task in record.tasks:
        stacked = np.stack([np.asarray(v[task]) for v in views])  # views, N, C
        mean = stacked.mean(axis=0)
        classes = mean.shape[1]
        counts = np.zeros_like(mean, dtype=int)
        for view in stacked:
            for i, c in enumerate(view.argmax(axis=1)):
                counts[i, c] += 1
        # Most votes wins; a tie goes to the higher mean probability.
        vote = np.array(
            [
                max(range(classes), key=lambda c: (n[c], m[c]))
                for n, m in zip(counts, mean, strict=True)
            ]
        )
        np.testing.assert_allclose(tta.tta_mean[task], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(np.floor(tta.tta_votes[task]), counts)
        np.testing.assert_array_equal(tta.tta_votes[task].argmax(axis=1), vote)
        m = result["per_task"][task]["tta"]
        _assert_top1_and_macro_f1(m["mean"], rows.labels[task], mean.argmax(axis=1))
        _assert_top1_and_macro_f1(m["vote"], rows.labels[task], vote)


def _assert_calibration(run, result, record, rows, preds):
    """Before / after temperature scaling with the record's T (fitted on val in
    training: it is what evaluation's own val pass fits), in the report."""
    val = split_rows(run, record, "val")
    val_preds = forward_pass(
        load_run_model(run),
        val.files,
        image_size=record.image_size,
        resize_mode=record.eval_resize,
        tasks=record.tasks,
    )
    for task in record.tasks:
        t = record.temperature[task]
        fitted = fit_temperature(val.labels[task], val_preds.probs[task])
        # Training's val pipeline and this pass differ in float rounding, and the
        # NLL is flat at its minimum: T agrees to a few tenths of a percent.
        assert fitted == pytest.approx(t, rel=1e-2)
        cal = result["per_task"][task]["calibration"]
        assert cal["temperature"] == t and "fitted on the val split" in cal["source"]
        labels, raw = rows.labels[task], preds.probs[task]
        after = calibration_metrics(labels, apply_temperature(raw, t))
        for key in ("ece", "classwise_ece", "nll", "brier"):
            assert cal["before"][key] == pytest.approx(
                calibration_metrics(labels, raw)[key], abs=1e-6
            )
            assert cal["after"][key] == pytest.approx(after[key], abs=1e-6)
        assert cal["before"]["nll"] == pytest.approx(result["per_task"][task]["loss"])
    md = (run / "eval" / "test" / "report.md").read_text()
    assert "## Calibration" in md and "| artist | after |" in md
    assert "before (T = 1)" in md and "### Reliability diagram" in md
    html = (run / "eval" / "test" / "report.html").read_text()
    assert "<h2>Calibration</h2>" in html and "reliability diagram: style" in html


def _assert_top1_and_macro_f1(metrics, labels, pred):
    """``metrics``' top1 and macro_f1 are sklearn's on the labelled rows."""
    keep = labels >= 0
    want = f1_score(labels[keep], pred[keep], average="macro")
    assert metrics["macro_f1"] == pytest.approx(want, abs=1e-6)
    top1 = (pred[keep] == labels[keep]).mean()
    assert metrics["top1"] == pytest.approx(top1, abs=1e-6)


def test_audit_ranks_a_planted_mislabel_first(run, tmp_path):
    """A copy of the run whose test split is three copies of image P (artist X),
    three of image Q (artist Y) and one more copy of Q labelled X: that one is the
    only image closer to another class than to its own (its leave-one-out X centroid
    is P, its nearest other centroid Q itself), whatever the model learnt."""
    record = read_model_record(run)
    rows = split_rows(run, record, "test")
    preds = forward_pass(
        load_run_model(run),
        rows.files,
        image_size=record.image_size,
        resize_mode=record.eval_resize,
        tasks=record.tasks,
    )
    artist = record.tasks[0]  # the audit's task
    labels = rows.labels[artist]
    unit = preds.embeddings / np.linalg.norm(preds.embeddings, axis=1, keepdims=True)
    cos = unit @ unit.T
    other_artist = (labels[:, None] != labels[None, :]) & (labels >= 0)[:, None]
    # P and Q: the least similar pair of images of different artists.
    p, q = np.unravel_index(np.where(other_artist, cos, np.inf).argmin(), cos.shape)
    assert cos[p, q] < 0.99 and labels[q] >= 0

    planted_run = tmp_path / "planted"
    shutil.copytree(run, planted_run, ignore=shutil.ignore_patterns("eval"))
    text = (run / "splits.csv").read_text(encoding="utf-8")
    table = list(csv.DictReader(io.StringIO(text)))
    source = {r["file"]: r for r in table if r["split"] == "test"}
    (tmp_path / "images").mkdir()

    def copy(index, name, **relabel):
        file = tmp_path / "images" / f"{name}{Path(rows.files[index]).suffix}"
        shutil.copyfile(rows.files[index], file)
        return {**source[rows.files[index]], "file": str(file), **relabel}

    x_name = record.class_names[artist][labels[p]]
    test = [copy(p, f"p{k}") for k in range(3)] + [copy(q, f"q{k}") for k in range(3)]
    # Only the artist is wrong: genre and style stay Q's.
    planted = copy(q, "planted", **{artist: x_name})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(table[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows([r for r in table if r["split"] != "test"] + test + [planted])
    (planted_run / "splits.csv").write_text(out.getvalue(), encoding="utf-8")

    evaluate(planted_run, split="test", audit=True, bootstrap=100)
    audit = (planted_run / "eval" / "test" / "label_audit.csv").read_text()
    flagged = list(csv.DictReader(io.StringIO(audit)))
    top = flagged[0]
    assert (top["rank"], top["file"], top["label"]) == ("1", planted["file"], x_name)
    assert top["nearest_other"] == record.class_names[artist][labels[q]]
    assert float(top["own_sim"]) == pytest.approx(cos[p, q], abs=1e-4)
    assert float(top["other_sim"]) == pytest.approx(1.0, abs=1e-4)
    assert float(top["margin"]) == pytest.approx(cos[p, q] - 1.0, abs=1e-4)
    assert "small_margin" in top["reasons"]
    assert all(float(r["margin"]) > 0 for r in flagged[1:])


def test_second_call_replaces_the_report_atomically(run):
    evaluate(run, split="val", bootstrap=200)
    evaluate(run, split="val", bootstrap=300)
    metrics = json.loads((run / "eval" / "val" / "metrics.json").read_text())
    assert metrics["per_task"]["artist"]["bootstrap"]["n_resamples"] == 300
    assert "model selection" in metrics["split_note"]
    assert not [p for p in (run / "eval").iterdir() if p.name.startswith(".")]


def test_bad_runs_are_one_clear_error(run, tmp_path, capsys):
    from keras_art.evaluate import main

    with pytest.raises(UserError, match="no such folder"):
        evaluate(tmp_path / "nope")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished, ignore=shutil.ignore_patterns("eval"))
    (unfinished / "summary.json").unlink()
    with pytest.raises(UserError, match="unfinished.*--resume"):
        evaluate(unfinished)
    old = tmp_path / "old"
    shutil.copytree(run, old, ignore=shutil.ignore_patterns("eval"))
    record = json.loads((old / "model.json").read_text())
    (old / "model.json").write_text(json.dumps({**record, "version": 0}))
    assert main(["--run", str(old)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "record version 0" in err
    assert main(["--run", str(run), "--format", "folder"]) == 2
    assert "--format needs --data" in capsys.readouterr().err


def test_another_collection_matched_by_class_name(run, tmp_path):
    # A folder-per-class collection (its folder names label styles) whose names are
    # spelled differently.
    from PIL import Image

    record = read_model_record(run)
    names = record.class_names["style"]
    rng = np.random.default_rng(0)
    for spelling in (names[0].replace("_", " ").upper(), names[1].lower()):
        folder = tmp_path / "other" / spelling
        folder.mkdir(parents=True)
        for i in range(3):
            pixels = (rng.random((40, 40, 3)) * 255).astype("uint8")
            Image.fromarray(pixels).save(folder / f"{i}.jpg")
    (tmp_path / "other" / "Nobody Known").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(
        tmp_path / "other" / "Nobody Known" / "x.jpg"
    )
    result = evaluate(run, data=str(tmp_path / "other"), data_format="folder")
    matching = result["class_matching"]["style"]
    assert len(matching["matched"]) == 2
    assert matching["unmatched_data"] == ["Nobody Known"]
    assert result["n_images"] == 6


def test_old_run_warns_of_near_duplicates_and_classes_without_images(
    run, tmp_path, capsys
):
    # A run split before near-duplicates were grouped: its first test image is a
    # resized copy of a train image, and its test split has no image of one class.
    from PIL import Image

    from keras_art.evaluate import main

    old = tmp_path / "old"
    shutil.copytree(run, old, ignore=shutil.ignore_patterns("eval"))
    report = json.loads((old / "data_report.json").read_text())
    del report["near_duplicates"]
    (old / "data_report.json").write_text(json.dumps(report))
    with open(old / "splits.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    train = next(r for r in rows if r["split"] == "train")
    test = [r for r in rows if r["split"] == "test"]
    copy = tmp_path / "copy.png"
    with Image.open(train["file"]) as image:
        image.convert("RGB").resize((image.width // 2, image.height // 2)).save(copy)
    test[0]["file"] = str(copy)
    gone = test[-1]["style"]
    for r in test:
        if r["style"] == gone:
            r["split"] = "val"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (old / "splits.csv").write_text(buffer.getvalue(), encoding="utf-8")

    assert main(["--run", str(old), "--bootstrap", "20"]) == 0
    err = capsys.readouterr().err
    metrics = json.loads((old / "eval" / "test" / "metrics.json").read_text())
    found = metrics["near_duplicates_in_train"]
    assert found["examples"][0] == {
        "file": str(copy),
        "train": train["file"],
        "distance": found["examples"][0]["distance"],
    }
    assert found["count"] >= 1 and found["examples"][0]["distance"] <= 10
    near = metrics["warnings"][0]
    assert near.startswith(f"{found['count']} test images have a near-duplicate")
    missing = next(w for w in metrics["warnings"] if "style classes have no" in w)
    assert gone in missing
    assert near in err and missing in err
    page = (old / "eval" / "test" / "report.md").read_text()
    assert f"- **warning**: {found['count']} test images" in page
    assert f"| {gone} | 0.000 | no test images | no test images | 0 |" in page


def test_a_run_without_temperatures_gets_them_fitted_on_val(run, tmp_path):
    """Runs trained before calibration existed: evaluate fits T on val (here the
    split evaluated, so its own pass) and records it for export and predict."""
    old = tmp_path / "old"
    old.mkdir()
    for item in run.iterdir():  # links: the model and checkpoints are large
        if item.name not in ("model.json", "eval"):
            (old / item.name).symlink_to(item)
    record = json.loads((run / "model.json").read_text())
    (old / "model.json").write_text(json.dumps({**record, "temperature": None}))
    result = evaluate(old, split="val", bootstrap=10)
    fitted = read_model_record(old).temperature
    assert fitted == pytest.approx(record["temperature"], rel=1e-2)
    for task, m in result["per_task"].items():
        assert m["calibration"]["temperature"] == fitted[task]
        assert "by this evaluation" in m["calibration"]["source"]
    md = (old / "eval" / "val" / "report.md").read_text()
    assert "fitted on this split: the after numbers are in-sample" in md
