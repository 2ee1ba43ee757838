"""`evaluate --shards`: a run's split read from TFRecord shards instead of its files.

One tiny multi-task run (the smoke preset, shared with test_evaluate.py) and two
shard folders written from its own data by make_tfrecords: the original bytes and
prepared (short side bound, re-encoded)."""

import io
import json
import shutil

import keras
import numpy as np
import pytest

from data_scripts import make_tfrecords
from keras_art.errors import UserError
from keras_art.evaluate import main
from keras_art.evaluation import evaluate
from keras_art.evaluation.evaluate_run import shard_rows, split_rows
from keras_art.evaluation.plots import plot_gallery
from keras_art.evaluation.predictions import forward_pass
from keras_art.evaluation.shards import align_records
from keras_art.models.model_record import read_model_record
from keras_art.models.run_reader import load_run_model

pytestmark = pytest.mark.slow

SHORT_SIDE, QUALITY = 40, 80  # smoke images are 32 px, the sample's ~150-200 px


@pytest.fixture(scope="module")
def run(smoke_multi_run):
    return smoke_multi_run


def _write_shards(run, out, *flags):
    """make_tfrecords as a user runs it for a run: its task and config.json."""
    argv = ["--task", "multi", "--config", str(run / "config.json"), "--out", str(out)]
    assert make_tfrecords.main([*argv, *flags]) == 0
    return out


@pytest.fixture(scope="module")
def original(run, tmp_path_factory):
    return _write_shards(run, tmp_path_factory.mktemp("shards") / "original")


@pytest.fixture(scope="module")
def prepared(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "prepared"
    flags = ["--short-side", str(SHORT_SIDE), "--quality", str(QUALITY)]
    return _write_shards(run, out, *flags)


def _aligned_test_rows(run, shards):
    """The run's test rows read from ``shards``, checked to be the files' rows (same
    files, same labels); with the model and its eval-resize arguments."""
    record = read_model_record(run)
    files_rows = split_rows(run, record, "test")
    rows = shard_rows(run, record, "test", shards)
    assert rows.files == files_rows.files
    for task in record.tasks:
        np.testing.assert_array_equal(rows.labels[task], files_rows.labels[task])
    kwargs = dict(
        image_size=record.image_size,
        resize_mode=record.eval_resize,
        tasks=record.tasks,
    )
    return record, rows, load_run_model(run), kwargs


def test_original_bytes_give_exactly_the_files_numbers(run, original):
    """Shards of the original bytes: the same probabilities, metrics and TTA as the
    files; the report goes beside the files' report, not over it."""
    record, rows, model, kwargs = _aligned_test_rows(run, original)
    kwargs["tta_flip"] = True  # plain and flipped at the run's size
    from_files = forward_pass(model, rows.files, **kwargs)
    from_shards = forward_pass(
        model, rows.files, encoded=rows.encoded_of(rows.files), **kwargs
    )
    for task in record.tasks:
        np.testing.assert_array_equal(from_shards.probs[task], from_files.probs[task])
        np.testing.assert_array_equal(
            from_shards.tta_mean[task], from_files.tta_mean[task]
        )
    np.testing.assert_array_equal(from_shards.embeddings, from_files.embeddings)

    on_files = evaluate(run, split="test", bootstrap=100)
    on_shards = evaluate(run, split="test", shards=original, bootstrap=100)
    assert on_shards["per_task"] == on_files["per_task"]
    assert on_shards["combined"] == on_files["combined"]
    assert on_files["image_source"]["kind"] == "files"
    assert on_shards["image_source"]["encoding"] == {"encoding": "original"}
    assert on_shards["split"] == "test-shards-original"
    assert (run / "eval" / "test" / "metrics.json").is_file()
    assert (run / "eval" / "test-shards-original" / "report.html").is_file()


def test_prepared_shards_evaluate_and_record_their_encoding(run, prepared, capsys):
    """Re-encoded shards evaluate (TTA, audit and Grad-CAM from the records' bytes)
    and metrics.json and the report say which images were used."""
    argv = ["--run", str(run), "--shards", str(prepared), "--tta", "--audit"]
    assert main([*argv, "--gradcam", "2", "--bootstrap", "100"]) == 0
    assert "short side at most 40 px, JPEG quality 80" in capsys.readouterr().out
    out = run / "eval" / "test-shards-prepared"
    metrics = json.loads((out / "metrics.json").read_text())
    source = metrics["image_source"]
    assert source["kind"] == "shards" and source["dir"] == str(prepared.resolve())
    assert source["encoding"]["bound"] == "short_side"
    assert (source["encoding"]["side"], source["encoding"]["quality"]) == (40, 80)
    assert "prepared shards" in (out / "report.md").read_text()
    assert len(list((out / "gradcam").glob("*.png"))) == 2
    assert (out / "label_audit.png").stat().st_size > 0
    for m in metrics["per_task"].values():
        assert {"mean", "vote"} <= set(m["tta"])

    # The records are the run's test images, each paired with its own file and
    # labels, brought to the model by the run's eval resize.
    record, rows, model, kwargs = _aligned_test_rows(run, prepared)
    on_files = forward_pass(model, rows.files, **kwargs)
    on_shards = forward_pass(
        model, rows.files, encoded=rows.encoded_of(rows.files), **kwargs
    )
    files_p = np.concatenate([on_files.probs[t] for t in record.tasks], axis=1)
    shards_p = np.concatenate([on_shards.probs[t] for t in record.tasks], axis=1)
    # Re-encoding (short side 40, JPEG q80, then the eval crop to 32 px) moves the
    # smoke model's probabilities noticeably. Measured over every image and class
    # of the three tasks (two fixture runs): mean |difference| 0.013-0.019, up to
    # 0.25 for one probability, while two different images differ by 0.07-0.09 on
    # average, so a per-image bound cannot tell an image from another. The bound is
    # on the mean, relative to this model's between-image difference (it scales
    # with whatever the fixture run learnt): half of it, about 2x from either side.
    # Measured on broken code: records paired with the wrong files 0.07-0.08
    # (unaligned, shifted by one, reversed), the letterbox eval resize 0.09-0.10.
    own = np.abs(shards_p - files_p).mean()
    between = np.abs(files_p[:, None] - files_p[None]).mean(axis=-1)
    between = between[~np.eye(len(rows.files), dtype=bool)].mean()
    assert own < 0.5 * between, (own, between)
    # metrics.json's numbers are those of the records' probabilities.
    for task in record.tasks:
        m, labels = metrics["per_task"][task], rows.labels[task]
        probs = on_shards.probs[task][labels >= 0]
        labels = labels[labels >= 0]
        top1 = (probs.argmax(axis=1) == labels).mean()
        assert m["top1"] == pytest.approx(top1, abs=1e-6)
        # Keras's loss on probabilities clips them to [1e-7, 1 - 1e-7], as the
        # report does (a barely trained model gives some far below 1e-7).
        loss = keras.losses.sparse_categorical_crossentropy(labels, probs)
        assert m["loss"] == pytest.approx(float(np.mean(loss)), rel=1e-5)


def _edited_copy(shards, out, edit):
    shutil.copytree(shards, out)
    manifest = json.loads((out / "manifest.json").read_text())
    edit(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _reverse_artists(m):
    m["class_names"]["artist"] = m["class_names"]["artist"][::-1]


def _other_members(m):
    m["splits"]["test"]["members"] = "0" * 64


def _other_count(m):
    m["splits"]["test"]["count"] += 1


def _no_test_split(m):
    del m["splits"]["test"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (_reverse_artists, "was written for artist classes"),
        (_other_members, "other test image files"),
        (_other_count, "but the run's splits.csv has"),
        (_no_test_split, "has no test split"),
    ],
)
def test_manifest_mismatch_is_one_line_and_writes_nothing(
    run, original, tmp_path, capsys, edit, message
):
    bad = _edited_copy(original, tmp_path / "bad", edit)
    assert main(["--run", str(run), "--shards", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert message in err and "make_tfrecords --task multi --config" in err
    assert not list((run / "eval").glob("*test-shards-bad*"))


def test_shard_labels_must_be_the_runs(run, tmp_path):
    """Same files (count and members) but other labels: a UserError, no report."""
    from keras_art.data.pipeline.tfrecord import write_shards

    record = read_model_record(run)
    rows = split_rows(run, record, "test")
    labels = {t: rows.labels[t].copy() for t in record.tasks}
    labels["artist"][0] = (labels["artist"][0] + 1) % len(record.class_names["artist"])
    write_shards(
        rows.files, labels, tmp_path / "relabelled", "test",
        class_names=record.class_names,
    )  # fmt: skip
    with pytest.raises(UserError, match="labels differ from the run's splits.csv"):
        evaluate(run, shards=tmp_path / "relabelled")
    assert not list((run / "eval").glob("*relabelled*"))


def test_shards_with_data_is_an_error(run, original, capsys):
    argv = ["--run", str(run), "--shards", str(original), "--data", str(original)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Pass one of them" in err


def test_records_align_by_path_then_by_unique_file_name(tmp_path):
    assert align_records(["a/1.jpg", "b/2.jpg"], ["b/2.jpg", "a/1.jpg"], "S") == [1, 0]
    # The data folder moved: file names match, and are unique.
    moved = ["/new/a/1.jpg", "/new/b/2.jpg"]
    assert align_records(moved, ["/old/b/2.jpg", "/old/a/1.jpg"], "S") == [1, 0]
    with pytest.raises(UserError, match="stored twice"):
        align_records(["a/1.jpg"], ["a/1.jpg", "a/1.jpg"], "S")
    with pytest.raises(UserError, match="1 of the run's images have no record"):
        align_records(["a/1.jpg", "a/3.jpg"], ["a/1.jpg", "a/2.jpg"], "S")
    with pytest.raises(UserError, match="no record"):  # names not unique: no fallback
        align_records(["x/1.jpg", "y/1.jpg"], ["z/1.jpg", "w/1.jpg"], "S")
    with pytest.raises(UserError, match="1 records are not in the run's split"):
        align_records(["a/1.jpg"], ["a/1.jpg", "a/2.jpg"], "S")


def test_gallery_draws_in_memory_bytes_when_the_file_is_gone(tmp_path):
    from PIL import Image

    pixels = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype("uint8")
    file = tmp_path / "painting.png"
    Image.fromarray(pixels).save(file)
    data = file.read_bytes()
    from_file = plot_gallery([{"file": str(file), "caption": "x"}], tmp_path / "a.png")
    item = {"file": str(tmp_path / "gone.png"), "image": data, "caption": "x"}
    from_bytes = plot_gallery([item], tmp_path / "b.png")
    as_array = [
        np.asarray(Image.open(io.BytesIO(p.read_bytes())))
        for p in (from_file, from_bytes)
    ]
    np.testing.assert_array_equal(*as_array)
