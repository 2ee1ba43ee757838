"""`evaluate` end to end on a tiny finished multi-task run (the smoke preset)."""

import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import f1_score

from keras_art.errors import UserError
from keras_art.evaluation import evaluate
from keras_art.evaluation.evaluate_run import split_rows
from keras_art.evaluation.predictions import predict
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
    preds = predict(
        load_run_model(run),
        rows.files,
        image_size=record.image_size,
        resize_mode=record.eval_resize,
        tasks=record.tasks,
    )
    for task in record.tasks:
        labels, probs = rows.labels[task], preds.probs[task]
        keep = labels >= 0
        want = f1_score(labels[keep], probs[keep].argmax(1), average="macro")
        assert result["per_task"][task]["macro_f1"] == pytest.approx(want, abs=1e-6)
        top1 = (probs[keep].argmax(1) == labels[keep]).mean()
        assert result["per_task"][task]["top1"] == pytest.approx(top1, abs=1e-6)


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
