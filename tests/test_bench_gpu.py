"""``python -m keras_art.bench gpu`` on a CPU-only machine: every section, "no GPU"."""

import json

import pytest

from keras_art.benchmarks import gpu, gpu_checks
from tests.training import tiny


def _build(head, num_classes, image_size):
    model = tiny.tiny_model()
    return model, tiny.set_trainable, tiny.stages(model.get_layer("backbone"))


def _jpeg_folders(root, classes=3, per_class=3):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg")
    return root


def test_every_section_runs_on_cpu_and_the_cpu_served_export_matches(
    smoke_multi_run, tmp_path
):
    from keras_art.atomic_files import atomic_write_json

    config = gpu.GpuBenchConfig(
        sizes=(tiny.SIZE,),
        batch_size=2,
        steps=1,
        num_classes=tiny.CLASSES["artist"],
        precisions=("float32", "mixed_bfloat16"),
        data_dir=str(_jpeg_folders(tmp_path / "data")),
        run_dir=str(smoke_multi_run),
    )
    result = gpu.bench_gpu(config, build_fn=_build, train_cfg=tiny.train_cfg())
    out = tmp_path / "gpu.json"
    atomic_write_json(out, result)
    result = json.loads(out.read_text())

    sections = ("devices", "cudnn", "precision", "input_bound", "export")
    assert not [s for s in sections if "error" in result[s]], result
    assert result["gpu"] == "no GPU"
    assert result["devices"]["gpus"] == [] and result["devices"]["note"] == "no GPU"
    assert result["cudnn"]["cudnn"] == "not applicable: no GPU"
    assert result["cudnn"]["cudnn_ops_found"] == []
    assert result["cudnn"]["generic_step_ms"] > 0
    precision = result["precision"]
    assert set(precision["step_ms"]) == {
        f"{h}/{tiny.SIZE}/{p}"
        for h in ("cnn_rnn", "gap")
        for p in ("float32", "mixed_bfloat16")
    }
    assert precision["step_time_over_float32"][f"gap/{tiny.SIZE}/mixed_bfloat16"] > 0
    for setting in ("on_device_off", "on_device_on"):
        timing = result["input_bound"][f"{tiny.SIZE}/{setting}"]
        assert timing["real_step_ms"] > 0 and timing["cached_step_ms"] > 0
        assert isinstance(timing["input_bound"], bool)
    export = result["export"]
    assert export["ok"] is True, export
    assert export["cpu_child_gpus"] == 0
    assert export["max_abs_diff"] <= gpu_checks.SERVE_TOLERANCE


def test_cudnn_scan_finds_a_planted_cudnn_op_and_none_in_a_cpu_traced_head():
    import keras
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2

    from keras_art.export.graph_scan import find_gpu_only_ops
    from keras_art.layers import DirectionalBiGRU

    graph = graph_pb2.GraphDef()
    graph.node.add(name="x", op="Placeholder")
    function = graph.library.function.add()
    function.signature.name = "__inference_train_step_7"
    function.node_def.add(name="gru", op="CudnnRNNV3")
    assert find_gpu_only_ops(graph) == {"CudnnRNNV3": ["__inference_train_step_7"]}

    inputs = keras.Input((3, 3, 4))
    features = keras.layers.Flatten()(DirectionalBiGRU(units=2)(inputs))
    probs = keras.layers.Dense(2, activation="softmax")(features)
    head = keras.Model(inputs, {"artist": probs})
    step = gpu_checks.head_train_step(head)
    x, y = tf.zeros([2, 3, 3, 4]), tf.one_hot([0, 1], 2)
    assert gpu_checks.scan_traced_step(step, x, y) == {}


@pytest.mark.parametrize(
    "flags",
    [["--sizes", "16"], ["--batch-size", "0"], ["--steps", "x"], ["--heads", "spp"]],
)
def test_bad_flags_exit_2(flags, capsys):
    from keras_art.bench import main

    assert main(["gpu", *flags]) == 2


def test_a_missing_run_folder_exits_2_naming_the_flag(tmp_path, capsys):
    from keras_art.bench import main

    assert main(["gpu", "--run", str(tmp_path / "nope")]) == 2
    assert "--run" in capsys.readouterr().err


def test_precisions_follow_the_policies():
    from keras_art.benchmarks.gpu_timing import PRECISIONS
    from keras_art.training.precision import POLICIES

    assert {policy: value for value, policy in POLICIES.items()} == PRECISIONS
