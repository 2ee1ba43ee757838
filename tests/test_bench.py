import json

import numpy as np
import pytest
from PIL import Image

from keras_art import bench
from keras_art.benchmarks import registry
from keras_art.benchmarks.pipeline import generate_large_jpegs
from keras_art.errors import UserError


@pytest.fixture()
def class_tree(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(2):
        (tmp_path / f"c{k}").mkdir()
        for i in range(4 + 2 * k):
            a = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
            Image.fromarray(a).save(tmp_path / f"c{k}" / f"{i}.jpg")
    return tmp_path


def test_pipeline_bench_writes_json(class_tree, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench.main(
        [
            "pipeline",
            "--data",
            str(class_tree),
            "--image-size",
            "32",
            "--batch-size",
            "4",
            "--min-images",
            "8",
            "--rounds",
            "2",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    for key in ("pipeline", "decode_ceiling", "keras_baseline"):
        assert result["images_per_s"][key] > 0
    assert set(result["ratios"]) == {
        "pipeline_vs_decode_ceiling",
        "pipeline_vs_keras_baseline",
    }
    assert result["images"] == 10 and result["image_size"] == 32
    assert result["threads"] >= 1 and result["peak_rss_mb"] > 0
    assert set(result["cpu_ms_per_image"]) == set(result["images_per_s"])
    # Two interleaved rounds per variant; the headline is their median.
    per_round = result["per_round"]["images_per_s"]
    assert result["rounds"] == 2 and all(len(v) == 2 for v in per_round.values())
    for key, runs in per_round.items():
        assert result["images_per_s"][key] == pytest.approx(np.median(runs), 0.01)
    assert len(result["per_round"]["ratios"]) == 2
    assert "bench" in capsys.readouterr().err  # progress lines


def test_generate_large_writes_class_tree_once(tmp_path):
    root = generate_large_jpegs(3, (64, 48), cache_dir=str(tmp_path))
    files = sorted(root.glob("*/*.jpg"))
    assert len(files) == 3 and Image.open(files[0]).size == (64, 48)
    assert generate_large_jpegs(3, (64, 48), cache_dir=str(tmp_path)) == root


def test_registry_and_bad_usage(class_tree, capsys):
    assert "pipeline" in registry()
    assert bench.main(["pipeline"]) == 2  # neither --data nor --generate-large
    assert "needs --data" in capsys.readouterr().err
    assert bench.main(["nope"]) == 2
    with pytest.raises(UserError, match="rounds"):
        bench.bench(["pipeline", "--data", str(class_tree), "--rounds", "0"])
    with pytest.raises(UserError, match="variants"):
        bench.bench(["pipeline", "--data", str(class_tree), "--variants", "x"])


def test_pipeline_recipe_overrides(class_tree, tmp_path):
    from keras_art.benchmarks.pipeline import PipelineBenchConfig

    config = PipelineBenchConfig(
        data_dir=str(class_tree),
        overrides=("augment.scale_jitter=[1, 1]", "input.balanced_sampling=false"),
    )
    augment, input_cfg = config.recipe()
    assert augment.scale_jitter == [1.0, 1.0] and not input_cfg.balanced_sampling
    assert augment.image_size == 384 and input_cfg.batch_size == 32
    with pytest.raises(UserError, match="augment.. and input.."):
        PipelineBenchConfig(overrides=("train.epochs=3",)).recipe()


def test_pipeline_bench_times_the_ops_moved_on_device(class_tree, tmp_path):
    """--set augment.on_device=true: the pipeline runs without colour, erasing and
    mixing, and the JSON says what those cost in the step instead."""
    out = tmp_path / "bench.json"
    argv = ["pipeline", "--data", str(class_tree), "--image-size", "32"]
    argv += ["--batch-size", "4", "--min-images", "8", "--rounds", "1"]
    argv += ["--variants", "pipeline", "--set", "augment.on_device=true"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    moved = result["on_device"]
    assert moved["ops"] == ["random_erasing", "color_jitter", "mixup_cutmix"]
    assert moved["cpu_ms_per_image"] > 0 and moved["device"].startswith("CPU")
    assert "augment.on_device" in result["recipe"]
    assert bench.main([*argv[:-2], "--json", str(out)]) == 0
    assert "on_device" not in json.loads(out.read_text())


def test_pipeline_bench_times_prepared_shards(class_tree, tmp_path):
    """--prepared-short-side converts the images to shards first and times the
    training pipeline on them next to the originals."""
    out = tmp_path / "bench.json"
    argv = ["pipeline", "--data", str(class_tree), "--image-size", "32",
            "--batch-size", "4", "--min-images", "8", "--rounds", "1",
            "--variants", "pipeline,decode_ceiling", "--prepared-short-side", "32",
            "--json", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert set(result["images_per_s"]) == {
        "pipeline",
        "decode_ceiling",
        "pipeline_prepared",
    }
    assert result["cpu_ms_per_image"]["pipeline_prepared"] > 0
    assert {"pipeline_prepared_vs_decode_ceiling", "pipeline_prepared_vs_pipeline"} <= (
        set(result["ratios"]) & set(result["cpu_ratios"])
    )
    prepared = result["prepared"]
    assert (prepared["bound"], prepared["side"], prepared["quality"]) == (
        "short_side",
        32,
        90,
    )
    assert prepared["reencoded"] == 10  # every 40x48 image is above the bound
    assert prepared["conversion_images_per_s"] > 0
    assert prepared["bytes_ratio"] == pytest.approx(
        prepared["shard_bytes"] / prepared["original_bytes"], abs=1e-3
    )
    with pytest.raises(UserError, match="--prepared-short-side"):
        bench.bench(["pipeline", "--data", str(class_tree), "--variants",
                     "pipeline_prepared"])  # fmt: skip


def test_generate_smooth_scans_are_smaller_than_grainy_ones(tmp_path):
    grainy = generate_large_jpegs(2, (320, 240), cache_dir=str(tmp_path))
    smooth = generate_large_jpegs(2, (320, 240), str(tmp_path), kind="smooth")
    assert smooth != grainy

    def size(root):
        return sum(f.stat().st_size for f in root.glob("*/*.jpg"))

    assert size(smooth) < 0.8 * size(grainy)


def test_near_duplicates_bench_groups_every_planted_copy(tmp_path):
    out = tmp_path / "near.json"
    argv = ["near-duplicates", "--entries", "3000", "--rounds", "1", "--brute-force"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["entries"] == 3000 and result["planted_copies"] == 300
    assert result["copies_grouped"] == 300
    assert result["pairs"] == result["brute_force_pairs"] >= 300
    assert result["seconds"] > 0 and result["brute_force_seconds"] > 0
    assert bench.main(["near-duplicates", "--entries", "1"]) == 2


def test_pipeline_bench_times_the_trainer_on_a_local_data_service(class_tree, tmp_path):
    """``--data-service 1``: variant (a) again with a local tf.data service worker
    preparing its images; the JSON has the trainer's CPU per image against the
    in-process pipeline's (the numbers themselves are `bench`'s to report)."""
    out = tmp_path / "service.json"
    argv = ["pipeline", "--data", str(class_tree), "--image-size", "32"]
    argv += ["--batch-size", "4", "--min-images", "8", "--rounds", "1"]
    argv += ["--variants", "pipeline", "--data-service", "1", "--json", str(out)]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert set(result["images_per_s"]) == {"pipeline", "pipeline_service"}
    service = result["data_service"]
    assert service["workers"] == 1
    assert (
        service["trainer_cpu_ms_per_image"]
        == result["cpu_ms_per_image"]["pipeline_service"]
    )
    assert service["trainer_cpu_share"] == pytest.approx(
        service["trainer_cpu_ms_per_image"] / service["in_process_cpu_ms_per_image"],
        abs=2e-3,
    )


def test_upscaled_real_kind_times_the_paintings_made_large(tmp_path, capsys):
    """``--kind upscaled-real``: --data's paintings, cycled to N, each resized to
    cover --large-size (LANCZOS) and centre-cropped, JPEG quality 92, class folders
    kept; cached, and timed like any other folder."""
    colours = {"c0": [(200, 30, 30), (30, 200, 30)], "c1": [(30, 30, 200)]}
    source = tmp_path / "paintings"
    for name, fills in colours.items():
        (source / name).mkdir(parents=True)
        for i, fill in enumerate(fills):
            Image.new("RGB", (48, 40), fill).save(source / name / f"{i}.png")
    cache, out = tmp_path / "cache", tmp_path / "up.json"
    argv = ["pipeline", "--data", str(source), "--kind", "upscaled-real"]
    argv += [
        "--generate-large",
        "12",
        "--large-size",
        "96x64",
        "--cache-dir",
        str(cache),
    ]
    argv += ["--image-size", "32", "--batch-size", "4", "--min-images", "8"]
    argv += ["--rounds", "1", "--variants", "pipeline,decode_ceiling"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["images"] == 12 and result["source"] == str(source)
    assert result["cpu_ms_per_image"]["pipeline"] > 0
    (root,) = cache.iterdir()
    files = sorted(root.glob("*/*.jpg"))
    assert len(files) == 12 and {Image.open(f).size for f in files} == {(96, 64)}
    # The paintings in order (c0/0, c0/1, c1/0, c0/0, ...), in their classes.
    order = [("c0", 0), ("c0", 1), ("c1", 0)] * 4
    for i, (name, k) in enumerate(order):
        got = np.asarray(Image.open(root / name / f"{i:05d}.jpg"), float)
        assert np.abs(got.mean(axis=(0, 1)) - colours[name][k]).max() < 3, (i, name)
    assert (
        bench.main(["pipeline", "--kind", "upscaled-real", "--generate-large", "2"])
        == 2
    )
    assert "upscales real paintings: pass --data DIR" in capsys.readouterr().err
