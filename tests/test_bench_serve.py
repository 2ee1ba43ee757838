"""``python -m keras_art.bench serve`` on the shared smoke run, with tiny repeats.

Timings on a shared 2-core machine prove nothing: the tests check the JSON's
shape and that every number is positive, never a speed.
"""

import json

import numpy as np
import pytest
from PIL import Image

from keras_art import bench
from keras_art.benchmarks import registry
from keras_art.benchmarks.serve import LATENCY_PATHS, THROUGHPUT_PATHS, pil_pixels
from keras_art.errors import UserError

pytestmark = pytest.mark.slow


def test_serve_bench_writes_json(smoke_multi_run, tmp_path, capsys):
    out = tmp_path / "serve.json"
    argv = ["serve", "--run", str(smoke_multi_run), "--repeats", "2"]
    argv += ["--batch", "3", "--batches", "1", "--json", str(out)]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert set(result["latency_ms"]) == set(LATENCY_PATHS)
    for stats in result["latency_ms"].values():
        assert 0 < stats["p50"] <= stats["p95"] and stats["mean"] > 0
    assert set(result["throughput_images_per_s"]) == set(THROUGHPUT_PATHS)
    assert all(v > 0 for v in result["throughput_images_per_s"].values())
    assert set(result["ratios"]) >= set(result["targets"])
    assert all(v > 0 for v in result["ratios"].values())
    assert result["sizes_mb"]["savedmodel"] > 0 and result["sizes_mb"]["tflite"] > 0
    assert result["pil_vs_tf_pixels"]["mean_abs_diff"] >= 0
    assert result["image_source"] == "test split" and result["images"] > 0
    assert (result["batch"], result["repeats"], result["image_size"]) == (3, 2, 32)
    assert result["cpu_count"] >= 1 and result["tensorflow"] and result["keras"]
    captured = capsys.readouterr()
    assert "[bench" in captured.err  # progress on stderr
    assert json.loads(captured.out) == result  # stdout is the JSON


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
