"""The train command: flags -> config; user mistakes -> one line, exit 2."""

import json

import pytest

from keras_art.data.sources.infer_format import infer_format
from keras_art.errors import UserError
from keras_art.train import build_parser, config_from_args, main


def _cfg(*argv):
    return config_from_args(build_parser().parse_args(list(argv)))[0]


def test_no_data_means_demo_preset_on_the_sample():
    cfg = _cfg("--task", "artist")
    assert cfg.preset == "demo" and cfg.data.format == "sample"


def test_flags_win_over_set_and_preset(tmp_path):
    (tmp_path / "Baroque").mkdir()
    cfg = _cfg(
        "--data",
        str(tmp_path),
        "--set",
        "train.epochs=9",
        "--epochs",
        "2",
        "--head",
        "spp",
        "--image-size",
        "96",
        "--mixed-precision",
        "bfloat16",
    )
    assert cfg.preset == "default"
    assert cfg.data.format == "folder" and cfg.data.path == str(tmp_path)
    assert cfg.train.epochs == 2 and cfg.model.head == "spp"
    assert cfg.augment.image_size == 96 and cfg.train.mixed_precision == "bfloat16"


def test_style_defaults_to_all_non_stem_stages():
    assert _cfg("--task", "style", "--preset", "seed000").train.unfreeze_from == "conv1"


@pytest.mark.parametrize(
    "layout,expected",
    [
        ({"wikiart_csv/Style": None}, "wikiart"),
        ({"artists.csv": ""}, "best-artworks"),
        ({"train-00000-of-00072.parquet": ""}, "parquet"),
        ({"Impressionism": None}, "folder"),
    ],
)
def test_infer_format(tmp_path, layout, expected):
    for name, content in layout.items():
        path = tmp_path / name
        if content is None:
            path.mkdir(parents=True)
        else:
            path.write_text(content)
    assert infer_format(str(tmp_path)) == expected


def test_infer_format_errors(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        infer_format(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="cannot tell the dataset layout"):
        infer_format(str(tmp_path))


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--task", "painter"], "invalid choice: 'painter'"),
        (["--data", "/definitely/not/here"], "no such file or folder"),
        (["--format", "wikiart"], "--format needs --data"),
        (["--set", "train.epochz=1"], "unknown config key 'train.epochz'"),
        (["--config", "/nope.yaml"], "no such file"),
        (["--resume", "/nope/run"], "not a run directory"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_resume_refuses_a_finished_run(tmp_path, capsys):
    run = tmp_path / "artist-gap-1"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "artist"}))
    (run / "summary.json").write_text("{}")
    assert main(["--resume", str(run)]) == 2
    assert "already finished" in capsys.readouterr().err
    assert main(["--resume", "--workdir", str(tmp_path)]) == 2
    assert "no unfinished run" in capsys.readouterr().err
