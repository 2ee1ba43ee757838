import json

import pytest

from keras_art import summary as summary_cli
from keras_art.config import ModelConfig
from keras_art.models.model_cost import count_macs


def test_summary_cli_tiny(tmp_path, capsys):
    out = tmp_path / "summary.json"
    code = summary_cli.main(
        [
            "--backbones",
            "efficientnetb0",
            "--heads",
            "gap",
            "--image-size",
            "32",
            "--num-classes",
            "5",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    (row,) = json.loads(out.read_text())
    assert (row["backbone"], row["head"], row["feature_map"]) == (
        "efficientnetb0",
        "gap",
        [1, 1, 1280],
    )
    # GAP head: 1280*384+384 + 384*128+128 + 2 BN x 4 x width + 128*5+5
    head = 1280 * 384 + 384 + 384 * 128 + 128 + 4 * (384 + 128) + 128 * 5 + 5
    assert row["head_params"] == head
    assert row["params"] == row["backbone_params"] + head
    assert 0 < row["trainable_params"] < row["params"]
    assert row["size_mb"] > row["params"] * 4 / 2**20 * 0.9
    assert row["gflops"] == pytest.approx(2 * row["gmacs"], abs=2e-3)
    assert row["gmacs"] > 0
    printed = capsys.readouterr().out
    assert "efficientnetb0" in printed and "GMACs" in printed


def test_head_macs_by_hand():
    from keras_art.models.heads import build_head_for_shape

    cfg = ModelConfig(head="cnn_rnn", proj_dim=4, gru_units=2, gru_layers=1)
    head = build_head_for_shape(cfg, 8, {"a": 3}, (3, 5))
    proj = 3 * 5 * 8 * 4
    gru = 2 * 3 * 5 * 3 * (4 * 2 + 2 * 2)  # both directions, both branches alike
    attention = (3 + 5) * (4 * 128 + 128)
    classifier = (8 + 4 * 2) * 3
    assert count_macs(head) == proj + 2 * gru + attention + classifier


def test_bad_arguments_exit_2(capsys):
    assert summary_cli.main(["--heads", "vit"]) == 2
    assert "--heads" in capsys.readouterr().err
    assert summary_cli.main(["--image-size", "8"]) == 2
