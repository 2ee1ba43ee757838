"""`export_tflite`, `tflite_classifier` and ``python -m keras_art.export --format
tflite``.

The shared multi-task smoke run (ResNet50 + cnn_rnn head, 32 px, center_crop) is
exported once through the CLI (float32, ``--compare``); quantization, every head and
the Flex fallback are checked on tiny run-free models (a real ResNet50 takes ~20 s
per conversion here).
"""

import contextlib
import io
import json
import logging
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_art.config import ModelConfig
from keras_art.errors import UserError
from keras_art.export.__main__ import main
from keras_art.export.tflite import (
    BUILTINS,
    SELECT_TF_OPS,
    convert_to_tflite,
    export_tflite,
    tflite_metadata,
)
from keras_art.models.calibration import apply_temperature
from keras_art.models.exported import tflite_classifier
from keras_art.models.heads import build_head
from keras_art.models.model_record import ModelRecord, read_model_record
from keras_art.models.run_reader import load_run_model
from tests.export.outputs import assert_outputs_match
from tests.training.tiny import SIZE, tiny_backbone

pytestmark = pytest.mark.slow

TASKS = ("artist", "genre", "style")
TOP_K = 3
# float32 TFLite (XNNPACK) against eager Keras: same weights, other kernels and
# summation order (max difference observed on the smoke run: 1.2e-6).
ATOL = 1e-5
CLASSES = {"artist": ["a", "b", "c"], "style": ["w", "x", "y", "z"]}


@pytest.fixture(scope="module")
def cli_export(smoke_multi_run, tmp_path_factory):
    """``python -m keras_art.export --run RUN --out BASE --format tflite --compare``."""
    base = tmp_path_factory.mktemp("tflite")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            [
                "--run", str(smoke_multi_run), "--out", str(base), "--format",
                "tflite", "--top-k", str(TOP_K), "--compare",
            ]
        )  # fmt: skip
    return code, out.getvalue(), err.getvalue(), base


def _tiny_model(head: str, extra=None) -> tuple[keras.Model, ModelRecord]:
    """`build_classifier`'s wiring around the tiny backbone (8x8 feature map)."""
    cfg = ModelConfig(
        head=head, proj_dim=32, gru_units=32, gru_layers=2, dense_units=[64, 32]
    )
    num_classes = {t: len(c) for t, c in CLASSES.items()}
    image = keras.Input((SIZE, SIZE, 3), name="image")
    features = tiny_backbone()(image)
    if extra is not None:
        features = extra(features)
    outputs = build_head(cfg, features.shape[-1], num_classes)(features)
    outputs = {
        t: keras.layers.Identity(dtype="float32", name=t)(outputs[t])
        for t in num_classes
    }
    record = ModelRecord(
        tasks=list(CLASSES),
        class_names=CLASSES,
        image_size=SIZE,
        eval_resize="resize",
        backbone="resnet50",
        head=head,
    )
    return keras.Model(image, outputs), record


def _pixels(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, size, size, 3)).astype("float32")


def _write(tmp_path, content: bytes, name: str = "m.tflite"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


# ------------------------------------------------------------- the run's CLI
def test_cli_prints_path_size_and_agreement(cli_export):
    code, out, err, base = cli_export
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == str(base / "r.tflite")  # NAME defaults to the run's name
    assert lines[1].startswith("size ") and "quantize none" in lines[1]
    assert "ops builtins, Flex ops: none" in lines[1]
    assert lines[2].startswith("serving_default(pixels float32[1, 32, 32, 3]) ->")
    # float32 TFLite and Keras pick the same class for every test image. On its own
    # that is a weak check (the barely trained smoke model gives most images the
    # same top class), so the largest probability difference is bounded too.
    compared = re.fullmatch(
        r"vs Keras on test \((\d+) images\): agreement (\S+), top-1 keras (\S+) / "
        r"tflite (\S+), max \|prob diff\| (\S+)",
        lines[3],
    )
    assert compared, lines[3]
    n, agreement, top1_keras, top1_tflite, max_diff = compared.groups()
    assert int(n) > 0 and agreement == "1.0000" and top1_keras == top1_tflite
    assert 0.0 <= float(max_diff) <= ATOL, lines[3]
    assert "converted with builtins" in err
    # Written atomically: only the model and its sidecar, no temp files.
    assert sorted(p.name for p in base.iterdir()) == ["r.json", "r.tflite"]


def test_outputs_equal_the_keras_model(cli_export, smoke_multi_run):
    record = read_model_record(smoke_multi_run)
    model = load_run_model(smoke_multi_run)
    classifier = tflite_classifier(cli_export[3] / "r.tflite")
    x = _pixels(3, record.image_size)
    got = classifier(x)
    # The file applies the run's temperatures (far from 1 for some task).
    assert max(abs(t - 1.0) for t in record.temperature.values()) > 0.5
    raw = model(x, training=False)
    expected = {t: apply_temperature(raw[t], record.temperature[t]) for t in TASKS}
    assert_outputs_match(got, expected, record, tasks=TASKS, top_k=TOP_K, atol=ATOL)


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_sidecar_holds_labels_input_and_outputs(cli_export, smoke_multi_run):
    base = cli_export[3]
    record = read_model_record(smoke_multi_run)
    meta = json.loads((base / "r.json").read_text())
    assert meta["format"] == "keras_art.tflite" and meta["quantize"] == "none"
    assert meta["tasks"] == list(TASKS)
    assert meta["class_names"] == record.class_names
    assert (meta["image_size"], meta["eval_resize"]) == (32, "center_crop")
    assert meta["input"]["name"] == "pixels"
    assert meta["input"]["shape"] == [1, 32, 32, 3]
    assert meta["outputs"]["genre"]["top_k_classes"] == "genre_top_k_classes"
    assert (meta["ops"], meta["select_tf_ops"]) == (BUILTINS, [])
    assert meta["size_bytes"] == (base / "r.tflite").stat().st_size
    assert meta["calibration"]["applied"] is True
    assert meta["calibration"]["temperature"] == record.temperature
    # the run's, as in the SavedModel's export_metadata.json
    assert meta["metrics"]["test"]
    interpreter = tf.lite.Interpreter(model_path=str(base / "r.tflite"))
    signature = interpreter.get_signature_list()
    assert list(signature) == ["serving_default"]
    assert signature["serving_default"]["inputs"] == ["pixels"]
    assert sorted(signature["serving_default"]["outputs"]) == sorted(
        n for task in meta["outputs"].values() for n in task.values()
    )


def test_classifier_batches_and_refuses_wrong_shapes(cli_export):
    classifier = tflite_classifier(cli_export[3] / "r.tflite")
    x = _pixels(2, 32, seed=3)
    both = classifier(x)
    one = classifier.predict_one(x[1])
    np.testing.assert_allclose(
        both["style_probabilities"][1:], one["style_probabilities"]
    )
    empty = classifier(np.zeros([0, 32, 32, 3], np.float32))
    assert empty["artist_probabilities"].shape == (0, 8)
    with pytest.raises(UserError, match="resize_for_eval"):
        classifier(_pixels(1, 40))
    with pytest.raises(UserError, match="no such TFLite file"):
        tflite_classifier(cli_export[3] / "missing.tflite")


def test_bad_flags_exit_2_and_write_nothing(smoke_multi_run, tmp_path, capsys):
    tflite = [
        "--run",
        str(smoke_multi_run),
        "--out",
        str(tmp_path),
        "--format",
        "tflite",
    ]
    assert main([*tflite, "--quantize", "int4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--quantize" in err[0] and "float16" in err[0]
    assert main([*tflite, "--version", "3"]) == 2
    assert "--version applies to --format saved_model" in capsys.readouterr().err
    assert main([*tflite, "--name", "../x"]) == 2
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="^quantize int8"):
        export_tflite(smoke_multi_run, tmp_path, quantize="int8")


# ------------------------------------------------------ run-free tiny models
@pytest.mark.parametrize("head", ["cnn_rnn", "gap", "spp"])
def test_every_head_converts_with_builtins_and_matches_keras(head, tmp_path):
    model, record = _tiny_model(head)
    converted = convert_to_tflite(model, record, top_k=2)
    assert (converted.ops, converted.select_tf_ops) == (BUILTINS, [])
    assert converted.dropped_outputs == []
    classifier = tflite_classifier(_write(tmp_path, converted.content))
    x = _pixels(2, SIZE, seed=1)
    got = classifier(x)
    expected = model(x, training=False)
    for task in CLASSES:
        np.testing.assert_allclose(
            got[f"{task}_probabilities"], expected[task], atol=ATOL
        )
    assert got["style_top_k_classes"].shape == (2, 2)


def test_quantized_files_are_smaller_with_the_same_top1(tmp_path):
    model, record = _tiny_model("cnn_rnn")
    x = _pixels(8, SIZE, seed=2)
    sizes, top1, probs = {}, {}, {}
    for mode in ("none", "float16", "dynamic"):
        converted = convert_to_tflite(model, record, quantize=mode, top_k=2)
        sizes[mode] = len(converted.content)
        out = tflite_classifier(_write(tmp_path, converted.content, f"{mode}.tflite"))(
            x
        )
        probs[mode] = out["artist_probabilities"]
        top1[mode] = probs[mode].argmax(1).tolist()
    assert sizes["float16"] < 0.7 * sizes["none"]
    assert sizes["dynamic"] < sizes["float16"]
    # float16 weights: the same classes and nearly the same probabilities. int8
    # weights (dynamic) move them more; on these 8 random images the class holds.
    assert top1["float16"] == top1["none"] == top1["dynamic"]
    np.testing.assert_allclose(probs["float16"], probs["none"], atol=1e-2)
    np.testing.assert_allclose(probs["dynamic"], probs["none"], atol=0.1)


def test_an_op_without_a_builtin_falls_back_to_flex(tmp_path, caplog):
    # erf has no TFLite builtin: the converter needs TensorFlow's (Flex) kernel.
    erf = keras.layers.Lambda(keras.ops.erf, name="erf")
    model, record = _tiny_model("gap", extra=erf)
    with caplog.at_level(logging.INFO, logger="keras_art.export.tflite"):
        converted = convert_to_tflite(model, record, top_k=2)
    # The recorded Flex op list, on either branch below: the conversion's, the
    # sidecar's, and the file's own custom op codes ("Flex<TF op>" strings).
    assert (converted.ops, converted.select_tf_ops) == (SELECT_TF_OPS, ["Erf"])
    sidecar = tflite_metadata({"outputs": {}}, record, converted, "none")
    assert (sidecar["ops"], sidecar["select_tf_ops"]) == (SELECT_TF_OPS, ["Erf"])
    assert set(re.findall(rb"Flex([A-Z]\w*)", converted.content)) == {b"Erf"}
    assert "builtins did not convert" in caplog.text
    assert f"converted with {SELECT_TF_OPS}, Flex ops Erf" in caplog.text
    # Whether this TensorFlow's interpreter has the Flex delegate, as the
    # conversion's own test run found it (tensorflow-cpu, what x86-64 installs,
    # has none; a full tensorflow build has it).
    no_delegate = "cannot run Flex ops" in caplog.text
    path = _write(tmp_path, converted.content)
    branches = []
    try:
        got = tflite_classifier(path)(_pixels(1, SIZE))
    except UserError as exc:
        branches.append("no Flex delegate: refused with a UserError")
        assert "needs Flex (Select TF) ops" in str(exc)
    else:
        branches.append("Flex delegate: numbers compared with Keras")
        expected = model(_pixels(1, SIZE), training=False)
        np.testing.assert_allclose(
            got["artist_probabilities"], expected["artist"], atol=ATOL
        )
    print(f"Flex fallback branch that ran: {branches}")  # shown with -rP / -s
    assert len(branches) == 1
    assert branches[0].startswith("no Flex") == no_delegate, branches
