"""`export_saved_model` and ``python -m keras_art.export`` on a tiny finished run.

One multi-task smoke run (center_crop eval resize) is exported once through the CLI
and shared: the tests read it as TF Serving would (saved_model_cli, a process that
cannot import keras_art, a REST body) and compare it with the Keras model, whose
probabilities get the run's temperature scaling (the export applies it in its graph).
"""

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_art.data.pipeline.decode import (
    decode_and_resize_for_eval,
    decode_rgb,
    resize_for_eval,
)
from keras_art.errors import UserError
from keras_art.export import export_saved_model, find_gpu_only_ops
from keras_art.export.__main__ import main
from keras_art.export.saved_model import (
    _next_version,
    disable_cudnn,
    named_outputs,
)
from keras_art.models.calibration import apply_temperature
from keras_art.models.classifier import feature_and_output_model
from keras_art.models.model_record import ModelRecord, read_model_record
from keras_art.models.run_reader import load_run_model
from keras_art.registry import EVAL_RESIZE_MODES
from tests.export.outputs import assert_outputs_match

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TASKS = ("artist", "genre", "style")
KEYS = ("probabilities", "top_k_classes", "top_k_scores")
TOP_K = 3
# Probabilities: the SavedModel runs the same float32 ops as Keras; only the
# summation order can differ (max difference observed: 0.0).
ATOL = 1e-5


def _encode(pixels: np.ndarray, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **kwargs)
    return out.getvalue()


def _random_pixels(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def run(smoke_multi_run):
    return smoke_multi_run


@pytest.fixture(scope="module")
def cli_export(run, tmp_path_factory):
    """``python -m keras_art.export --run RUN --out BASE --top-k 3``, in process."""
    base = tmp_path_factory.mktemp("models")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--run", str(run), "--out", str(base), "--top-k", str(TOP_K)])
    return code, out.getvalue(), base


@pytest.fixture(scope="module")
def exported(cli_export) -> Path:
    return cli_export[2] / "r" / "1"


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [
        _encode(_random_pixels(40, 60, 1), "JPEG", quality=90),
        _encode(_random_pixels(33, 21, 2), "PNG"),
        _encode(_random_pixels(32, 32, 3), "BMP"),
        _encode(_random_pixels(25, 50, 4), "WEBP", lossless=True),
    ]


def _call(loaded, images, signature="serving_default"):
    outputs = loaded.signatures[signature](image_bytes=tf.constant(images, tf.string))
    return {k: v.numpy() for k, v in outputs.items()}


# ------------------------------------------------------------- layout and CLI
def test_cli_prints_path_and_signatures_and_layout_is_tf_serving(cli_export, run):
    code, out, base = cli_export
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == str(base / "r" / "1")  # NAME defaults to the run's name
    assert any(
        line.startswith("serving_default(image_bytes string[-1]) ->") for line in lines
    )
    assert {"serve_pixels", "embedding", "metadata"} <= {
        line.split("(")[0] for line in lines[1:]
    }
    version = base / "r" / "1"
    assert (version / "saved_model.pb").is_file()
    assert (version / "variables" / "variables.index").is_file()
    # Nothing else under NAME: the staging folder was renamed into place.
    assert [p.name for p in (base / "r").iterdir()] == ["1"]
    # The weights are saved once (tracking the model too would double this).
    weights = sum(w.numpy().nbytes for w in load_run_model(run).weights)
    saved = sum(f.stat().st_size for f in (version / "variables").iterdir())
    assert weights <= saved < 1.1 * weights


def test_cli_refuses_existing_version_missing_run_and_tflite(cli_export, run, capsys):
    base = cli_export[2]
    assert main(["--run", str(run), "--out", str(base), "--version", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "version 2" in err[0]

    assert main(["--run", str(base / "nope"), "--out", str(base)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such folder" in err[0]

    tflite = ["--run", str(run), "--out", str(base), "--format", "tflite"]
    assert main([*tflite, "--version", "2"]) == 2
    assert "--version applies to --format saved_model" in capsys.readouterr().err
    assert main(["--run", str(run), "--out", str(base), "--quantize", "dynamic"]) == 2
    assert "--quantize applies to --format tflite" in capsys.readouterr().err
    assert sorted(p.name for p in (base / "r").iterdir()) == ["1"]


def test_unfinished_run_and_bad_arguments_are_user_errors(run, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text("{}")
    with pytest.raises(UserError, match="unfinished"):
        export_saved_model(unfinished, tmp_path / "models")
    with pytest.raises(UserError, match="positive integer"):
        export_saved_model(run, tmp_path / "models", version=0)
    with pytest.raises(UserError, match="top_k"):
        export_saved_model(run, tmp_path / "models", top_k=0)
    with pytest.raises(UserError, match=r"^name '\.\./x'"):
        export_saved_model(run, tmp_path / "models", name="../x")
    assert not (tmp_path / "models").exists()


def test_an_out_path_that_is_a_file_is_one_line_and_writes_nothing(
    run, tmp_path, capsys
):
    taken = tmp_path / "models"
    taken.write_text("not a folder")
    with pytest.raises(UserError, match=r"^out_base .*models: not a folder\."):
        export_saved_model(run, taken)
    with pytest.raises(UserError, match=r"out_base .*\(.*models is a file\)"):
        export_saved_model(run, taken / "deeper")
    for fmt in ("saved_model", "tflite"):
        code = main(["--run", str(run), "--out", str(taken), "--format", fmt])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert err == [
            f"error: --out {taken}: not a folder. Pass a folder; it is "
            "created if missing."
        ]
    assert taken.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_next_version_is_one_past_the_highest_integer(tmp_path):
    assert _next_version(tmp_path / "missing") == 1
    for name in ("1", "7", "10", ".11.abc.tmp", "notes"):
        (tmp_path / name).mkdir()
    assert _next_version(tmp_path) == 11


# ------------------------------------------------------------ saved_model_cli
def test_saved_model_cli_show_lists_signatures(exported, run):
    show = subprocess.run(
        [BIN / "saved_model_cli", "show", "--dir", exported, "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    record = read_model_record(run)

    def block(signature):
        start = show.index(f"signature_def['{signature}']:")
        end = show.find("signature_def[", start + 1)
        return show[start:end]

    def tensor(text, side, name, dtype, shape, pad=" " * 8):
        return (
            f"{side}['{name}'] tensor_info:\n{pad}dtype: {dtype}\n{pad}shape: {shape}"
            in text
        )

    default = block("serving_default")
    assert tensor(default, "inputs", "image_bytes", "DT_STRING", "(-1)")
    for task in TASKS:
        c, k = len(record.class_names[task]), min(TOP_K, len(record.class_names[task]))
        assert tensor(
            default, "outputs", f"{task}_probabilities", "DT_FLOAT", f"(-1, {c})"
        )
        assert tensor(
            default, "outputs", f"{task}_top_k_classes", "DT_STRING", f"(-1, {k})"
        )
        assert tensor(
            default, "outputs", f"{task}_top_k_scores", "DT_FLOAT", f"(-1, {k})"
        )
    assert default.count("outputs['") == 3 * len(TASKS)
    assert tensor(
        block("serve_pixels"), "inputs", "pixels", "DT_FLOAT", "(-1, -1, -1, 3)"
    )
    assert tensor(block("embedding"), "outputs", "embedding", "DT_FLOAT", "(-1, 2080)")
    assert "outputs['model_json']" in block("metadata")


def test_saved_model_cli_run_on_npy_of_image_bytes(exported, loaded, images, tmp_path):
    # An object array: a fixed-width bytes array ("S") would strip trailing NULs.
    np.save(tmp_path / "x.npy", np.array(images, dtype=object), allow_pickle=True)
    subprocess.run(
        [
            BIN / "saved_model_cli", "run", "--dir", exported, "--tag_set", "serve",
            "--signature_def", "serving_default",
            "--inputs", f"image_bytes={tmp_path / 'x.npy'}",
            "--outdir", tmp_path / "out",
        ],
        capture_output=True,
        check=True,
    )  # fmt: skip
    direct = _call(loaded, images)
    for key in ("artist_probabilities", "style_top_k_scores"):
        got = np.load(tmp_path / "out" / f"{key}.npy")
        np.testing.assert_allclose(got, direct[key], atol=ATOL)
    classes = np.load(tmp_path / "out" / "genre_top_k_classes.npy", allow_pickle=True)
    assert classes.tolist() == direct["genre_top_k_classes"].tolist()


# --------------------------------------------------------- TensorFlow alone
def test_loads_and_runs_without_keras_art(exported, loaded, images, tmp_path):
    np.save(tmp_path / "x.npy", np.array(images, dtype=object), allow_pickle=True)
    script = f"""
import json, sys
# keras_art is installed editable in the venv, and `import tensorflow` imports
# Keras when it can: block both, so only TensorFlow can serve the model.
sys.modules["keras_art"] = sys.modules["keras"] = None
importable = []
for name in ("keras_art", "keras"):
    try:
        __import__(name)
        importable.append(name)
    except ImportError:
        pass
import numpy as np, tensorflow as tf
model = tf.saved_model.load({str(exported)!r})
images = np.load({str(tmp_path / "x.npy")!r}, allow_pickle=True).tolist()
out = model.signatures["serving_default"](image_bytes=tf.constant(images))
print(json.dumps({{
    "importable": importable,
    "probs": out["artist_probabilities"].numpy().tolist(),
    "classes": out["artist_top_k_classes"].numpy().astype(str).tolist(),
}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPU only, as on a CPU server
    done = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["importable"] == []
    direct = _call(loaded, images)
    np.testing.assert_allclose(
        result["probs"], direct["artist_probabilities"], atol=ATOL
    )
    assert result["classes"] == direct["artist_top_k_classes"].astype(str).tolist()


def test_no_gpu_only_ops_in_the_exported_graph(exported):
    assert find_gpu_only_ops(exported) == {}


def test_gpu_scan_finds_cudnn_rnn_in_a_fake_graph():
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    graph = proto.meta_graphs.add().graph_def
    graph.node.add(name="x", op="Placeholder")
    function = graph.library.function.add()
    function.signature.name = "__inference_gru_42"
    function.node_def.add(name="gru", op="CudnnRNNV3")
    function.node_def.add(name="grad", op="CudnnRNNBackpropV3")
    assert find_gpu_only_ops(proto) == {
        "CudnnRNNV3": ["__inference_gru_42"],
        "CudnnRNNBackpropV3": ["__inference_gru_42"],
    }
    del function.node_def[:]
    assert find_gpu_only_ops(proto) == {}


def test_a_gru_traced_as_if_on_gpu_loses_cudnn_after_disable_cudnn():
    from keras_art.layers import DirectionalBiGRU

    model = keras.Sequential([keras.Input((4, 4, 8)), DirectionalBiGRU(units=4)])

    def trace():
        fn = tf.function(lambda x: model(x), autograph=False)
        spec = tf.TensorSpec([None, 4, 4, 8], tf.float32)
        return find_gpu_only_ops(fn.get_concrete_function(spec).graph.as_graph_def())

    # Keras picks cuDNN when it sees a GPU; patching that check (keras.src is the
    # only handle on it) reproduces keras 18504 on this CPU-only machine.
    with mock.patch(
        "keras.src.backend.tensorflow.rnn._is_gpu_available", return_value=True
    ):
        assert "CudnnRNNV3" in trace()
        assert disable_cudnn(model) == 4  # 2 layers x (forward, backward)
        assert trace() == {}


def test_export_refuses_a_graph_with_gpu_ops_and_leaves_nothing(run, tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    class CudnnArchive:
        def write_out(self, path, verbose=False):
            proto = saved_model_pb2.SavedModel()
            proto.meta_graphs.add().graph_def.node.add(name="gru", op="CudnnRNNV3")
            (Path(path) / "saved_model.pb").write_bytes(proto.SerializeToString())

    with (
        mock.patch("keras_art.export.saved_model.build_export_archive") as build,
        pytest.raises(UserError, match="GPU-only ops \\(CudnnRNNV3 in graph\\)"),
    ):
        build.return_value = CudnnArchive()
        export_saved_model(run, tmp_path)
    assert list((tmp_path / "r").iterdir()) == []  # staging removed, no version


# ------------------------------------------------------- equal to Keras
def test_predictions_and_embedding_equal_the_keras_model(run, loaded, images):
    record = read_model_record(run)
    model = load_run_model(run)
    x = tf.stack(
        [
            decode_and_resize_for_eval(b, record.image_size, record.eval_resize)
            for b in images
        ]
    )
    raw = model(x, training=False)
    # T far from 1 for some task: applying it or not must make a difference here.
    assert max(abs(t - 1.0) for t in record.temperature.values()) > 0.5
    expected = {t: apply_temperature(raw[t], record.temperature[t]) for t in TASKS}
    got = _call(loaded, images)
    assert_outputs_match(got, expected, record, tasks=TASKS, top_k=TOP_K, atol=ATOL)
    embedding = feature_and_output_model(model)(x, training=False)[1]
    # Unbounded features (up to ~15 here): relative, as float32 summation order
    # differs between the eager call and the graph.
    np.testing.assert_allclose(
        _call(loaded, images, "embedding")["embedding"], embedding, rtol=1e-5, atol=ATOL
    )


def test_pixels_signature_equals_bytes_signature(loaded, images):
    for data in images[1:3]:  # lossless: the decoded pixels are the file's
        pixels = tf.cast(decode_rgb(data), tf.float32)[None]
        got = loaded.signatures["serve_pixels"](pixels=pixels)
        want = _call(loaded, [data])
        for key, value in got.items():
            if value.dtype == tf.string:
                assert value.numpy().tolist() == want[key].tolist()
            else:
                np.testing.assert_allclose(value, want[key], atol=ATOL)


@pytest.mark.parametrize("mode", EVAL_RESIZE_MODES)
def test_resize_pixels_for_eval_equals_the_eval_decode(mode):
    data = _encode(_random_pixels(37, 53), "PNG")
    want = decode_and_resize_for_eval(data, 16, mode)
    got = resize_for_eval(decode_rgb(data)[None], 16, mode)[0]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_rest_request_body_and_reply_match_the_direct_call(loaded, images):
    body = json.dumps(
        {
            "signature_name": "serving_default",
            "instances": [{"b64": base64.b64encode(b).decode()} for b in images],
        }
    )
    reply = json.loads(_rest_predict(loaded, body))
    direct = _call(loaded, images)
    assert len(reply["predictions"]) == len(images)
    for i, prediction in enumerate(reply["predictions"]):
        assert set(prediction) == set(direct)
        for key, value in prediction.items():
            if direct[key].dtype.kind in "OS":
                assert value == direct[key][i].astype(str).tolist()
            else:
                np.testing.assert_allclose(value, direct[key][i], atol=ATOL)


def _rest_predict(loaded, body: str) -> str:
    """TF Serving's REST predict (row format) in miniature: ``{"b64": ...}``
    values become bytes, the signature runs, each output row becomes one
    prediction dict (strings as UTF-8 text)."""
    request = json.loads(body)
    signature = loaded.signatures[request.get("signature_name", "serving_default")]
    (input_name,) = signature.structured_input_signature[1]

    def decode(value):
        if isinstance(value, dict) and set(value) == {"b64"}:
            return base64.b64decode(value["b64"])
        return value

    rows = [
        decode(i[input_name] if isinstance(i, dict) and input_name in i else i)
        for i in request["instances"]
    ]
    outputs = signature(**{input_name: tf.constant(rows)})

    def plain(value):
        if value.dtype == object or value.dtype.kind == "S":
            return value.astype(bytes).astype(str).tolist()
        return value.tolist()

    columns = {k: v.numpy() for k, v in outputs.items()}
    return json.dumps(
        {
            "predictions": [
                {k: plain(v[i]) for k, v in columns.items()} for i in range(len(rows))
            ]
        }
    )


# ------------------------------------------------------------ odd requests
def test_corrupt_bytes_are_an_invalid_argument_error(loaded, images):
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="Unknown image file format"
    ):
        _call(loaded, [images[1], b"not an image at all"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="Invalid JPEG data"):
        _call(loaded, [images[0][:200]])
    assert _call(loaded, images[1:2])["artist_probabilities"].shape == (1, 8)


def test_empty_batch_gives_empty_outputs(loaded, run):
    record = read_model_record(run)
    got = _call(loaded, [])
    for task in TASKS:
        c = len(record.class_names[task])
        assert got[f"{task}_probabilities"].shape == (0, c)
        assert got[f"{task}_top_k_classes"].shape == (0, min(TOP_K, c))
        assert got[f"{task}_top_k_scores"].shape == (0, min(TOP_K, c))
    assert _call(loaded, [], "embedding")["embedding"].shape == (0, 2080)
    pixels = loaded.signatures["serve_pixels"](pixels=tf.zeros([0, 9, 9, 3]))
    assert pixels["genre_probabilities"].shape == (0, len(record.class_names["genre"]))


def test_large_image_and_animated_gif(loaded):
    big = _encode(np.full((4000, 6000, 3), 120, np.uint8), "JPEG", quality=80)
    got = _call(loaded, [big])["artist_probabilities"]
    assert got.shape == (1, 8) and np.isclose(got.sum(), 1.0, atol=1e-4)

    frames = [Image.fromarray(_random_pixels(30, 30, s)).quantize() for s in (5, 6)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    first = _encode(np.asarray(frames[0].convert("RGB")), "PNG")
    np.testing.assert_allclose(
        _call(loaded, [gif.getvalue()])["style_probabilities"],
        _call(loaded, [first])["style_probabilities"],
        atol=ATOL,
    )


# ------------------------------------------------------------ what travels
def test_metadata_travels_in_assets_extra_and_a_signature(exported, run, loaded):
    record = read_model_record(run)
    summary = json.loads((run / "summary.json").read_text())
    meta = json.loads((exported / "assets.extra" / "export_metadata.json").read_text())
    assert meta["tasks"] == record.tasks == list(TASKS)
    assert meta["class_names"] == record.class_names
    assert (meta["image_size"], meta["eval_resize"]) == (32, "center_crop")
    assert (meta["backbone"], meta["head"]) == (record.backbone, record.head)
    assert meta["metrics"] == summary["metrics"] and meta["metrics"]["test"]
    assert meta["outputs"]["genre"]["top_k_classes"] == "genre_top_k_classes"
    assert meta["calibration"]["temperature"] == record.temperature
    assert meta["calibration"]["applied"] is True
    assert meta["signature_defs"]["serving_default"]["inputs"] == {
        "image_bytes": ["string", [-1]]
    }
    for task in TASKS:
        labels = (exported / "assets.extra" / f"labels_{task}.txt").read_text()
        assert labels.splitlines() == record.class_names[task]
    signature = loaded.signatures["metadata"]()
    in_graph = json.loads(signature["model_json"].numpy())
    assert {k: v for k, v in meta.items() if k != "signature_defs"} == in_graph
    assert (
        signature["style_class_names"].numpy().astype(str).tolist()
        == (record.class_names["style"])
    )


def test_single_task_outputs_are_not_prefixed():
    record = ModelRecord(
        tasks=["artist"],
        class_names={"artist": ["a", "b", "c"]},
        image_size=32,
        eval_resize="resize",
        backbone="resnet50",
        head="gap",
    )
    probs = tf.constant([[0.2, 0.5, 0.3]])
    out = named_outputs({"artist": probs}, record, top_k=5)
    assert sorted(out) == sorted(KEYS)
    assert out["top_k_classes"].numpy().astype(str).tolist() == [["b", "c", "a"]]
    np.testing.assert_allclose(out["top_k_scores"], [[0.5, 0.3, 0.2]])


# ------------------------------------------------------------ TF Serving warm-up
def test_warmup_requests_replay_through_the_signature(exported, run, loaded):
    """The file TF Serving replays at load: PredictionLog records of real test-split
    images at each warm-up batch size, each of which the signature answers."""
    pytest.importorskip("tensorflow_serving.apis")
    from keras_art.export.warmup import WARMUP_BATCH_SIZES, read_warmup_requests
    from keras_art.models.run_reader import read_split

    meta = json.loads((exported / "assets.extra" / "export_metadata.json").read_text())
    assert meta["warmup_requests"]["written"] is True
    requests = read_warmup_requests(exported / meta["warmup_requests"]["file"])
    assert [len(r.inputs["image_bytes"].string_val) for r in requests] == list(
        WARMUP_BATCH_SIZES
    )
    test_files = read_split(run, read_model_record(run), "test").files
    first = Path(test_files[0]).read_bytes()
    for request in requests:
        assert request.model_spec.signature_name == "serving_default"
        assert request.model_spec.name == "r"
        batch = tf.make_ndarray(request.inputs["image_bytes"])
        assert batch[0] == first  # real images, not placeholders
        out = loaded.signatures[request.model_spec.signature_name](
            image_bytes=tf.constant(batch)
        )
        for task in TASKS:
            probs = out[f"{task}_probabilities"].numpy()
            assert probs.shape[0] == len(batch)
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_warmup_without_serving_api_is_skipped_and_says_how(caplog):
    from keras_art.export import warmup

    with mock.patch.object(warmup, "serving_api_available", return_value=False):
        images, record = warmup.plan_warmup(["/nope.jpg"])
    assert images == [] and record["written"] is False
    assert "--no-deps" in record["reason"]
    assert "pip install --no-deps" in caplog.text


def test_warmup_images_fall_back_to_generated_paintings(tmp_path):
    from keras_art.export.warmup import GENERATED_SIZE, warmup_images

    real = tmp_path / "a.jpg"
    real.write_bytes(_encode(_random_pixels(40, 60), "JPEG"))
    images, source = warmup_images([str(tmp_path / "gone.jpg"), str(real)], 3)
    assert images[0] == real.read_bytes() and len(images) == 3
    assert source == "1 test-split images, 2 generated JPEGs"
    decoded = Image.open(io.BytesIO(images[1]))
    assert decoded.size == GENERATED_SIZE and decoded.format == "JPEG"


def test_no_calibration_exports_raw_probabilities_and_says_so(run, tmp_path):
    from keras_art.export.saved_model import export_metadata

    record = read_model_record(run)
    entry = export_metadata(run, record, "p", 1, TOP_K, "best", calibration=False)[
        "calibration"
    ]
    assert entry["applied"] is False and entry["temperature"] == record.temperature
    assert "calibration off" in entry["note"]
    last = export_metadata(run, record, "p", 1, TOP_K, "last")["calibration"]
    assert last["applied"] is False and "best.keras" in last["note"]
    # The flag reaches the library (a real export of the raw outputs is the tiny
    # models' TFLite tests: no temperature, the Keras probabilities as they are).
    with (
        mock.patch("keras_art.export.export_saved_model") as export,
        mock.patch("keras_art.export.graph_scan.describe_signatures"),
        mock.patch("keras_art.export.graph_scan.format_signatures", return_value=""),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        argv = ["--run", str(run), "--out", str(tmp_path), "--no-calibration"]
        assert main(argv) == 0
    assert export.call_args.kwargs["calibration"] is False
