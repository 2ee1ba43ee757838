"""``python -m keras_art.bench serve`` on the shared smoke run, with tiny repeats.

Timings on a shared 2-core machine prove nothing: the tests check the JSON's
shape and that every number is positive, never a speed. What is checked for real:
that every timed path computes the run's predictions (a bench of a path serving
wrong outputs would compare nothing) and the PIL-vs-TensorFlow pixel gap.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_art import bench
from keras_art.benchmarks import registry, serve
from keras_art.benchmarks.serve import LATENCY_PATHS, THROUGHPUT_PATHS, pil_pixels
from keras_art.data.pipeline.decode import decode_and_resize_for_eval
from keras_art.errors import UserError
from keras_art.evaluation.evaluate_run import split_rows
from keras_art.export.batching import parse_batching_parameters
from keras_art.models.calibration import apply_temperature
from keras_art.models.run_reader import load_run_model, open_run

pytestmark = pytest.mark.slow

# Mean |PIL - TensorFlow| eval-resize gap, 0-255 levels: both are bilinear with
# antialiasing, with slightly different filters. Measured on the smoke run's 14
# test images (~150 px JPEGs center-cropped to 32 px): 0.95 on average, 1.14 on the
# worst image. A wrong geometry is an order of magnitude off (the whole image
# resized instead of its central square: 11; letterbox: 42; BGR: 43).
PIL_GAP_MAX = 3.0
# Largest probability difference of a path from Keras on TensorFlow's pixels.
# The SavedModel and TFLite paths get the same pixels and the same weights: only
# kernels and summation order differ (float32; measured <= 3e-6). Keras + PIL sees
# PIL's pixels: measured 0.014, while another image's pixels or a wrong geometry
# move the probabilities by 0.2 to 0.6.
SAME_PIXELS_ATOL = 1e-4
PIL_PIXELS_ATOL = 0.05


def test_serve_bench_writes_json(smoke_multi_run, tmp_path, capsys, monkeypatch):
    built = []  # the paths the bench timed, to check what they compute afterwards
    build_paths = serve._build_paths

    def keep_paths(*args, **kwargs):
        built.append(build_paths(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(serve, "_build_paths", keep_paths)
    out = tmp_path / "serve.json"
    argv = ["serve", "--run", str(smoke_multi_run), "--repeats", "2"]
    argv += ["--batch", "3", "--batches", "1", "--json", str(out)]
    argv += ["--export-dir", str(tmp_path / "models")]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    # The batch-size curve and, from it, TF Serving's batching file beside the
    # kept export (BASE/NAME/batching_parameters.txt next to BASE/NAME/1/).
    assert set(result["batch_curve"]) == {"1", "2", "3"}
    assert all(v > 0 for v in result["batch_curve"].values())
    model_dir = tmp_path / "models" / smoke_multi_run.name
    assert (model_dir / "1" / "saved_model.pb").is_file()
    assert result["batching"]["file"] == str(model_dir / "batching_parameters.txt")
    text = (model_dir / "batching_parameters.txt").read_text()
    assert parse_batching_parameters(text) == result["batching"]["parameters"]
    assert result["batching"]["parameters"]["max_batch_size"] in (1, 2, 3)
    assert set(result["latency_ms"]) == set(LATENCY_PATHS)
    for stats in result["latency_ms"].values():
        assert 0 < stats["p50"] <= stats["p95"] and stats["mean"] > 0
    assert set(result["throughput_images_per_s"]) == set(THROUGHPUT_PATHS)
    assert all(v > 0 for v in result["throughput_images_per_s"].values())
    assert set(result["ratios"]) >= set(result["targets"])
    assert all(v > 0 for v in result["ratios"].values())
    assert result["sizes_mb"]["savedmodel"] > 0 and result["sizes_mb"]["tflite"] > 0
    gap = result["pil_vs_tf_pixels"]
    assert 0 < gap["mean_abs_diff"] <= gap["max_image_mean_abs_diff"] < PIL_GAP_MAX
    assert result["image_source"] == "test split" and result["images"] > 0
    assert (result["batch"], result["repeats"], result["image_size"]) == (3, 2, 32)
    assert result["cpu_count"] >= 1 and result["tensorflow"] and result["keras"]
    captured = capsys.readouterr()
    assert "[bench" in captured.err  # progress on stderr
    assert json.loads(captured.out) == result  # stdout is the JSON

    # What the timed paths compute, against the run's Keras model on TensorFlow's
    # eval-resized pixels of the same images.
    run, record = open_run(smoke_multi_run, "best")
    data = [Path(f).read_bytes() for f in split_rows(run, record, "test").files]
    assert result["images"] == len(data)
    size, mode = record.image_size, record.eval_resize
    pixels = np.stack([decode_and_resize_for_eval(b, size, mode).numpy() for b in data])
    raw = load_run_model(run)(pixels, training=False)
    # The exported paths serve the run's calibrated probabilities (its temperature
    # baked into the graph); Keras + PIL is the raw model.
    temperature = record.temperature or {}
    assert temperature, "the smoke run is calibrated at the end of training"
    calibrated = {t: apply_temperature(raw[t], temperature[t]) for t in record.tasks}
    ((paths, _),) = built
    assert set(paths) == set(LATENCY_PATHS)
    for name, call in paths.items():
        got = [call([b]) for b in data]
        atol = PIL_PIXELS_ATOL if name == "keras_pil" else SAME_PIXELS_ATOL
        for task in record.tasks:
            key = task if name == "keras_pil" else f"{task}_probabilities"
            probs = np.concatenate([np.asarray(g[key]) for g in got])
            expected = raw[task] if name == "keras_pil" else calibrated[task]
            diff = np.abs(probs - np.asarray(expected)).max()
            assert diff <= atol, f"{name} {task}: max |prob diff| {diff:.3g} > {atol}"
    # The reported pixel gap is these images' (recomputed here, rounded as in the
    # JSON); `test_pil_pixels_follow_the_eval_resize` checks pil_pixels itself.
    per_image = [
        np.abs(pil_pixels(b, size, mode) - p).mean()
        for b, p in zip(data, pixels, strict=True)
    ]
    assert gap["mean_abs_diff"] == pytest.approx(np.mean(per_image), abs=6e-4)
    assert gap["max_image_mean_abs_diff"] == pytest.approx(max(per_image), abs=6e-4)


def test_registry_has_serve_and_bad_usage_exits_2(tmp_path, capsys):
    assert "serve" in registry()
    assert bench.main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--run" in err[0]
    assert bench.main(["serve", "--run", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_images_folder_must_hold_images(smoke_multi_run, tmp_path):
    with pytest.raises(UserError, match="--images .*no such folder"):
        bench.bench(["serve", "--run", str(smoke_multi_run), "--images", "/nope"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="no .*jpg.* files"):
        bench.bench(["serve", "--run", str(smoke_multi_run), "--images", str(tmp_path)])
    with pytest.raises(UserError, match="--repeats 0"):
        bench.bench(["serve", "--run", str(smoke_multi_run), "--repeats", "0"])


@pytest.mark.parametrize("mode", ["resize", "center_crop", "letterbox"])
def test_pil_pixels_follow_the_eval_resize(mode, tmp_path):
    import io

    from keras_art.data.pipeline.decode import decode_and_resize_for_eval

    rng = np.random.default_rng(0)
    # Smooth content: resampling filters agree closely on it.
    ramp = np.linspace(0, 255, 60, dtype=np.float32)
    pixels = np.stack([np.tile(ramp, (40, 1))] * 3, axis=-1)
    pixels += rng.uniform(0, 4, pixels.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "PNG")
    data = buf.getvalue()
    got = pil_pixels(data, 16, mode)
    want = decode_and_resize_for_eval(data, 16, mode).numpy()
    assert got.shape == (16, 16, 3) and got.dtype == np.float32
    # Same geometry (crop, bars) as TensorFlow; resampling differs (< 1 level here).
    assert np.abs(got - want).mean() < 2


@pytest.mark.parametrize("mode", ["resize", "center_crop", "letterbox"])
@pytest.mark.parametrize("shape", [(40, 60), (70, 30)])  # wide and tall
def test_pil_baseline_stays_close_to_resize_for_eval(mode, shape):
    """The serve bench's PIL re-implementation of the eval resize modes against
    the one the runs use (`decode.resize_for_eval` on the decoded pixels)."""
    import io

    from keras_art.data.pipeline.decode import decode_rgb, resize_for_eval

    h, w = shape
    rng = np.random.default_rng(1)
    # Smooth content (resampling filters agree closely on it), lossless PNG.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    pixels = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], -1)
    pixels += rng.uniform(0, 4, pixels.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "PNG")
    data = buf.getvalue()
    want = resize_for_eval(decode_rgb(data), 16, mode).numpy()
    got = pil_pixels(data, 16, mode)
    assert got.shape == want.shape == (16, 16, 3)
    assert np.abs(got - want).mean() < 2
    if mode == "letterbox":  # the black bars on the same rows and columns
        np.testing.assert_array_equal(
            got.max(axis=(1, 2)) == 0, want.max(axis=(1, 2)) == 0
        )
        np.testing.assert_array_equal(
            got.max(axis=(0, 2)) == 0, want.max(axis=(0, 2)) == 0
        )
