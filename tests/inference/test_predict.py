"""`keras_art.inference.predict` and ``python -m keras_art.predict``.

The shared multi-task smoke run is exported once as a SavedModel (TF Serving layout,
version 10 beside a broken version 9); a tiny two-task Keras model is converted to
TFLite here, to the exporter's contract, so these tests do not need
`keras_art.export.tflite` (one more test exports the run with it).

The run records temperatures (fitted at the end of training; the barely trained
smoke model is over-confident, T far from 1), so every model kind must give the
Keras model's probabilities temperature-scaled, and the raw ones with
``calibration=False``.
"""

import csv
import json
import logging
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_art.data.pipeline.decode import decode_and_resize_for_eval
from keras_art.errors import UserError
from keras_art.export import export_saved_model
from keras_art.inference import LoadedModel, format_predictions, load_model, predict
from keras_art.inference.backends import detect_model
from keras_art.inference.predict import CSV_COLUMNS, find_images
from keras_art.models.calibration import apply_temperature
from keras_art.models.exported import tflite_runtime
from keras_art.models.model_record import read_model_record
from keras_art.models.run_reader import load_run_model
from keras_art.predict import main
from tests.data.image_fixtures import write_images

pytestmark = pytest.mark.slow

TASKS = ("artist", "genre", "style")
# The SavedModel and TFLite run the same float32 maths as Keras in another order
# (max difference observed: 1e-6).
ATOL = 1e-5
TINY_CLASSES = {"artist": ["a", "b", "c"], "style": ["w", "x", "y", "z"]}
TINY_SIZE = 16


@pytest.fixture(scope="module")
def run(smoke_multi_run):
    return smoke_multi_run


@pytest.fixture(scope="module")
def serving(run, tmp_path_factory):
    """TF Serving's ``BASE/painters``: version 10 exported, version 9 broken (a
    string sort would pick it), a staging folder and a file."""
    base = tmp_path_factory.mktemp("serving")
    export_saved_model(run, base, name="painters", version=10)
    (base / "painters" / "9").mkdir()
    (base / "painters" / "9" / "saved_model.pb").write_bytes(b"not a graph")
    (base / "painters" / ".11.x.tmp").mkdir()
    (base / "painters" / "notes.txt").write_text("x")
    return base / "painters"


@pytest.fixture(scope="module")
def serving_model(serving):
    return load_model(serving)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Five images of five formats, two more in ``sub/`` (the same names), and a
    text file the walk must ignore."""
    root = tmp_path_factory.mktemp("images")
    write_images(root, 5)
    (root / "sub").mkdir()
    write_images(root / "sub", 2)
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def keras_probs(run, images):
    """Per file, the Keras model's probabilities on the eval decode + resize."""
    record = read_model_record(run)
    model = load_run_model(run)
    files = find_images([images])
    pixels = tf.stack(
        [
            decode_and_resize_for_eval(
                tf.io.read_file(f), record.image_size, record.eval_resize
            )
            for f in files
        ]
    )
    out = model(pixels, training=False)
    return files, {t: np.asarray(out[t]) for t in TASKS}


@pytest.fixture(scope="module")
def calibrated_probs(run, keras_probs):
    """`keras_probs` temperature-scaled with the run's temperatures."""
    temperature = read_model_record(run).temperature
    # Far from 1 for some task, or applying T and not applying it look the same.
    assert max(abs(t - 1.0) for t in temperature.values()) > 0.5, temperature
    files, probs = keras_probs
    return files, {t: apply_temperature(p, temperature[t]) for t, p in probs.items()}


@pytest.fixture(scope="module")
def run_model(run):
    return load_model(run)


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    """A tiny two-task Keras model as ``tiny.tflite`` + ``tiny.json`` (the
    exporter's contract) and the Keras model itself."""
    image = keras.Input((TINY_SIZE, TINY_SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(image)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = {
        t: keras.layers.Dense(
            len(names),
            activation="softmax",
            kernel_initializer=keras.initializers.RandomNormal(stddev=2.0),
            name=t,
        )(x)
        for t, names in TINY_CLASSES.items()
    }
    model = keras.Model(image, outputs)

    spec = tf.TensorSpec([1, TINY_SIZE, TINY_SIZE, 3], tf.float32, name="pixels")

    weights = [
        [tf.constant(v.numpy()) for v in variables]
        for variables in (model.trainable_variables, model.non_trainable_variables)
    ]

    # Weights as graph constants: the converter's own variable freezing gave
    # wrong outputs for a Keras 3 model here.
    @tf.function(input_signature=[spec])
    def serve(pixels):
        out, _ = model.stateless_call(*weights, pixels, training=False)
        return {f"{t}_probabilities": out[t] for t in TINY_CLASSES}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], tf.Module()
    )
    folder = tmp_path_factory.mktemp("tflite")
    (folder / "tiny.tflite").write_bytes(converter.convert())
    sidecar = {
        "tasks": list(TINY_CLASSES),
        "class_names": TINY_CLASSES,
        "image_size": TINY_SIZE,
        "eval_resize": "letterbox",
        "outputs": {
            t: {"probabilities": f"{t}_probabilities", "top_k_scores": "unused"}
            for t in TINY_CLASSES
        },
    }
    (folder / "tiny.json").write_text(json.dumps(sidecar))
    return folder / "tiny.tflite", model


def _by_file(result, task):
    return dict(zip(result.files, result.probabilities[task], strict=True))


def _assert_matches_keras(result, keras_probs):
    files, expected = keras_probs
    assert result.files == files
    for task in TASKS:
        np.testing.assert_allclose(
            result.probabilities[task], expected[task], atol=ATOL
        )
        np.testing.assert_array_equal(
            result.probabilities[task].argmax(1), expected[task].argmax(1)
        )


# ------------------------------------------------------------- the backends
def test_run_directory_matches_the_keras_model(run_model, images, calibrated_probs):
    assert run_model.kind == "run" and run_model.keras_model is not None
    result = predict(run_model, [images], batch_size=3)
    assert result.calibrated and run_model.calibrated
    _assert_matches_keras(result, calibrated_probs)


def test_saved_model_matches_the_keras_model(serving, images, calibrated_probs):
    result = predict(serving / "10", images, batch_size=4)
    assert result.model == f"{serving / '10'} (saved_model)"
    _assert_matches_keras(result, calibrated_probs)


def test_no_calibration_gives_the_raw_probabilities(
    run, run_model, serving_model, images, keras_probs, calibrated_probs
):
    # The run scales its Keras output; the SavedModel has T inside its graph and
    # undoes it exactly (p_raw ∝ p^T).
    record = read_model_record(run)
    assert serving_model.baked_temperature == record.temperature
    for loaded in (run_model, serving_model):
        raw = predict(loaded, [images], calibration=False)
        assert not raw.calibrated
        _assert_matches_keras(raw, keras_probs)
        # The same loaded model switches back without reloading.
        _assert_matches_keras(predict(loaded, [images]), calibrated_probs)
    assert not load_model(run, calibration=False).calibrated


def test_tf_serving_folder_uses_the_highest_integer_version(
    serving, serving_model, images, calibrated_probs, caplog
):
    with caplog.at_level(logging.INFO, logger="keras_art"):
        assert detect_model(serving) == ("saved_model", serving / "10")
    assert "using its highest version, 10" in caplog.text
    assert serving_model.path == serving / "10"
    _assert_matches_keras(predict(serving_model, [images]), calibrated_probs)


def test_an_export_with_the_old_metadata_name_still_loads(serving, tmp_path):
    """Exports made before the rename hold ``assets.extra/model.json``; its class
    names (marked here) are what predict reads, not the metadata signature's."""
    old = tmp_path / "1"
    shutil.copytree(serving / "10", old)
    new = old / "assets.extra" / "export_metadata.json"
    meta = json.loads(new.read_text())
    meta["class_names"]["genre"][0] = "from-the-old-file"
    (old / "assets.extra" / "model.json").write_text(json.dumps(meta))
    new.unlink()
    assert load_model(old).class_names["genre"][0] == "from-the-old-file"


def test_tflite_matches_its_keras_model(tiny_tflite, images):
    path, model = tiny_tflite
    loaded = load_model(path)
    assert (loaded.kind, loaded.image_size, loaded.eval_resize) == (
        "tflite",
        TINY_SIZE,
        "letterbox",
    )
    result = predict(loaded, images, batch_size=4)
    pixels = tf.stack(
        [
            decode_and_resize_for_eval(tf.io.read_file(f), TINY_SIZE, "letterbox")
            for f in result.files
        ]
    )
    expected = model(pixels, training=False)
    assert len(result.files) == 7
    for task in TINY_CLASSES:
        np.testing.assert_allclose(
            result.probabilities[task], expected[task], atol=ATOL
        )
        np.testing.assert_array_equal(
            result.probabilities[task].argmax(1), np.argmax(expected[task], 1)
        )


def test_tflite_runs_on_litert_where_installed(tiny_tflite, images, caplog):
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    assert tflite_runtime()[0] is interpreter.Interpreter
    with caplog.at_level(logging.INFO, logger="keras_art"):
        result = predict(tiny_tflite[0], images)
    assert result.runtime.startswith("LiteRT (ai-edge-litert ")
    assert f"predict: the model runs on {result.runtime}" in caplog.text


def test_tflite_falls_back_to_tf_lite_with_the_same_probabilities(
    tiny_tflite, images, monkeypatch
):
    first = predict(tiny_tflite[0], images)
    # As if ai-edge-litert were not installed: its import fails.
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    factory, runtime = tflite_runtime()
    assert runtime == f"tf.lite (TensorFlow {tf.__version__})"
    assert isinstance(factory(model_path=str(tiny_tflite[0])), tf.lite.Interpreter)
    fallback = predict(tiny_tflite[0], images)
    assert fallback.runtime == runtime
    for task in TINY_CLASSES:
        np.testing.assert_allclose(
            fallback.probabilities[task], first.probabilities[task], atol=ATOL
        )


def test_a_corrupt_tflite_file_is_a_user_error(tiny_tflite, tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3 not a flatbuffer" * 50)
    shutil.copy(tiny_tflite[0].with_suffix(".json"), tmp_path / "broken.json")
    with pytest.raises(UserError, match=r"broken.tflite: not a TFLite model \("):
        load_model(broken)


def test_tflite_without_its_sidecar_is_a_user_error(tiny_tflite, tmp_path):
    lone = tmp_path / "lone.tflite"
    shutil.copy(tiny_tflite[0], lone)
    with pytest.raises(UserError, match="no lone.json beside it"):
        load_model(lone)
    (tmp_path / "lone.json").write_text(json.dumps({"tasks": ["artist"]}))
    with pytest.raises(UserError, match="missing class_names, image_size"):
        load_model(lone)


def test_exported_tflite_matches_the_keras_model(
    run, images, keras_probs, calibrated_probs, tmp_path
):
    # Imported here, not skipped when missing: a renamed export_tflite fails this.
    from keras_art.export.tflite import export_tflite

    path = export_tflite(run, tmp_path, name="painters")
    _assert_matches_keras(predict(path, images), calibrated_probs)
    _assert_matches_keras(predict(path, images, calibration=False), keras_probs)


def test_no_backend_calls_a_model_with_zero_images(
    run_model, serving_model, tiny_tflite
):
    for loaded in (run_model, serving_model, load_model(tiny_tflite[0])):
        empty = loaded.predict_bytes([])
        assert {t: v.shape for t, v in empty.items()} == {
            t: (0, len(names)) for t, names in loaded.class_names.items()
        }


# ------------------------------------------------------- inputs and skipping
def test_folders_are_walked_recursively_sorted_images_only(images, tmp_path):
    odd = tmp_path / "painting.data"
    odd.write_bytes((images / "img000.jpg").read_bytes())
    files = find_images([images, odd])
    names = [f.removeprefix(f"{images}/") for f in files]
    assert names == [
        "img000.jpg",
        "img001.png",
        "img002.png",
        "img003.png",
        "img004.gif",
        "sub/img000.jpg",
        "sub/img001.png",
        str(odd),  # named directly: tried whatever its suffix
    ]


@pytest.mark.parametrize("kind", ["run", "saved_model"])
def test_corrupt_files_are_skipped_and_counted_others_predicted(
    kind, run_model, serving_model, images, tmp_path, caplog
):
    mixed = tmp_path / "mixed"
    shutil.copytree(images, mixed)
    (mixed / "bad.jpg").write_bytes(b"not an image at all")
    (mixed / "empty.png").write_bytes(b"")
    truncated = (mixed / "img000.jpg").read_bytes()[:300]
    (mixed / "sub" / "cut.jpg").write_bytes(truncated)
    model = run_model if kind == "run" else serving_model
    with caplog.at_level(logging.INFO, logger="keras_art"):
        result = predict(model, mixed, batch_size=4)
    bad = {str(mixed / n) for n in ("bad.jpg", "empty.png", "sub/cut.jpg")}
    assert {path for path, _ in result.skipped} == bad
    assert len(result.files) == 7 and not bad & set(result.files)
    reasons = dict(result.skipped)
    assert reasons[str(mixed / "bad.jpg")].startswith("Unknown image file format")
    assert reasons[str(mixed / "empty.png")] == "Input is empty."
    assert "{{" not in caplog.text and "[Op:" not in caplog.text
    assert f"predict: skipped {mixed / 'bad.jpg'}: Unknown image" in caplog.text
    assert "skipped 3 of 10 files: " in caplog.text
    # The good images' results do not depend on their batch neighbours.
    clean = predict(model, images)
    for task in TASKS:
        got = _by_file(result, task)
        for path, probs in _by_file(clean, task).items():
            np.testing.assert_allclose(
                got[path.replace(str(images), str(mixed))], probs, atol=ATOL
            )


def test_an_all_bad_batch_never_reaches_the_model(run_model, images, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a_bad.png").write_bytes(b"garbage")
    (folder / "b_bad.png").write_bytes(b"garbage")
    shutil.copy(images / "img001.png", folder / "c_good.png")
    sizes = []

    def counting(data):
        sizes.append(len(data))
        return run_model.predict_bytes(data)

    spy = LoadedModel(**{**vars(run_model), "predict_bytes": counting})
    result = predict(spy, folder, batch_size=2)
    assert [p.rsplit("/", 1)[1] for p in result.files] == ["c_good.png"]
    assert 0 not in sizes and sizes  # batch 1: two bad -> tried singly; batch 2: one


def test_no_images_and_only_bad_images_are_user_errors(run_model, tmp_path):
    with pytest.raises(UserError, match="no images in"):
        predict(run_model, tmp_path)
    (tmp_path / "x.jpg").write_bytes(b"nope")
    with pytest.raises(UserError, match="none of the 1 files could be read"):
        predict(run_model, tmp_path)
    with pytest.raises(UserError, match="no such file or folder"):
        predict(run_model, tmp_path / "missing")


def test_progress_is_logged_every_n_batches(run_model, images, caplog):
    with caplog.at_level(logging.INFO, logger="keras_art"):
        predict(run_model, images, batch_size=2, progress_every=2)
    progress = [r.getMessage() for r in caplog.records if "images" in r.getMessage()]
    assert progress == ["predict: 4/7 images", "predict: 7/7 images"]


# ------------------------------------------------------------ outputs
def test_csv_has_one_row_per_image_task_and_rank(run_model, images, tmp_path):
    out = tmp_path / "out" / "predictions.csv"
    result = predict(run_model, images, top_k=2, csv=out)
    assert result.csv == out
    assert [p.name for p in out.parent.iterdir()] == ["predictions.csv"]  # no temp
    with out.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    assert len(rows) == 7 * len(TASKS) * 2
    first = [r for r in rows if r["path"] == result.files[0] and r["task"] == "genre"]
    probs = result.probabilities["genre"][0]
    order = np.argsort(-probs)[:2]
    names = read_model_record(run_model.path).class_names["genre"]
    assert [r["rank"] for r in first] == ["1", "2"]
    assert [r["class"] for r in first] == [names[i] for i in order]
    np.testing.assert_allclose(
        [float(r["probability"]) for r in first], probs[order], atol=1e-6
    )
    assert {r["gradcam"] for r in rows} == {""}


def test_gradcam_writes_one_overlay_per_image(run_model, images, tmp_path):
    out = tmp_path / "cams"
    result = predict(
        run_model, images, top_k=1, gradcam=out, csv=tmp_path / "p.csv", batch_size=4
    )
    written = sorted(p.name for p in out.iterdir())
    # sub/img000.jpg and sub/img001.png repeat names of the top folder.
    assert written == sorted(
        [f"img00{i}.png" for i in range(5)] + ["img000-2.png", "img001-2.png"]
    )
    assert result.gradcam[-1] == str(out / "img001-2.png")
    for path in result.gradcam:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = format_predictions(result)
    assert f"  gradcam: {out / 'img000-2.png'}" in text
    with (tmp_path / "p.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["path"]: r["gradcam"] for r in rows} == dict(
        zip(result.files, result.gradcam, strict=True)
    )


def test_printout_lists_top_k_per_task(run_model, images):
    result = predict(run_model, images / "img001.png", top_k=3)
    lines = format_predictions(result).splitlines()
    assert lines[0] == str(images / "img001.png")
    assert lines[1::4] == ["  artist", "  genre", "  style"]
    for task, start in zip(TASKS, (2, 6, 10), strict=True):
        block = lines[start : start + 3]
        for (name, prob), line in zip(result.top(0, task), block, strict=True):
            assert line.startswith(f"    {name}") and line.endswith(f"{prob:6.1%}")
        assert len({line.index("%") for line in block}) == 1  # aligned


# -------------------------------------------------------------------- CLI
def test_cli_prints_predictions_and_exits_0(
    serving, images, keras_probs, calibrated_probs, tmp_path, capsys
):
    assert main(["--model", str(serving), str(images / "sub"), "--top-k", "2"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == str(images / "sub" / "img000.jpg")
    assert lines[1] == "  artist" and lines[2].endswith("%")
    assert len(lines) == 2 * (1 + len(TASKS) * 3)
    assert "using its highest version, 10" in err
    assert "predict: 2/2 images" in err
    assert "calibrated probabilities (temperature scaling: artist T=" in err
    # --no-calibration: the raw top probability of each image and task.
    argv = ["--model", str(serving), str(images), "--top-k", "1", "--csv"]
    for flag, (files, want) in (
        ([], calibrated_probs),
        (["--no-calibration"], keras_probs),
    ):
        assert main([*argv, str(tmp_path / "p.csv"), *flag]) == 0
        with open(tmp_path / "p.csv", newline="") as fh:
            got = {
                (r["path"], r["task"]): float(r["probability"])
                for r in csv.DictReader(fh)
            }
        for i, file in enumerate(files):
            for task in TASKS:
                assert got[file, task] == pytest.approx(want[task][i].max(), abs=1e-5)
    assert "raw probabilities (calibration off)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "{serving}", "{images}/missing.jpg"], "no such file or folder"),
        (["--model", "{images}", "{images}"], "not a model"),
        (["--model", "{images}/nope", "{images}"], "--model"),
        (
            ["--model", "{serving}/10", "{images}", "--gradcam", "{images}/cams"],
            "--gradcam needs a run directory's Keras model",
        ),
        (["--model", "{serving}", "{images}", "--top-k", "0"], "--top-k 0"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(serving, images, args, message, capsys):
    argv = [a.format(serving=serving, images=images) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (images / "cams").exists()
