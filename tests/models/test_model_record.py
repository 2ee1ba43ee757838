import json

import pytest

from keras_art.config import build_config
from keras_art.errors import UserError
from keras_art.models.model_record import (
    MODEL_RECORD,
    ModelRecord,
    read_model_record,
)

NAMES = {"artist": ["Claude_Monet", "Gustav_Klimt"], "style": ["Baroque"]}


def test_round_trip_from_config(tmp_path):
    cfg, _ = build_config(
        "smoke", overrides=["task=multi", "augment.eval_resize=letterbox"]
    )
    names = {**NAMES, "genre": ["portrait", "landscape"]}
    ModelRecord.from_config(cfg, names).write(tmp_path)
    record = read_model_record(tmp_path)
    assert record.tasks == ["artist", "genre", "style"]
    assert record.class_names == {t: names[t] for t in record.tasks}
    assert record.num_classes() == {"artist": 2, "genre": 2, "style": 1}
    assert (record.image_size, record.eval_resize) == (32, "letterbox")
    assert (record.backbone, record.head) == ("resnet50", "cnn_rnn")
    assert record.input_range == [0.0, 255.0]


def test_missing_record_names_the_fix(tmp_path):
    with pytest.raises(UserError, match=f"no {MODEL_RECORD}.*keras_art.train"):
        read_model_record(tmp_path)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"version": 99}, "record version 99"),
        ({"eval_resize": "stretch"}, "not a valid model record"),
        ({"tasks": ["genre"]}, "not a valid model record"),
        ({"unknown_field": 1}, "not a valid model record"),
    ],
)
def test_incompatible_or_broken_records_are_one_clear_error(tmp_path, change, match):
    raw = {
        "tasks": ["artist"],
        "class_names": NAMES,
        "image_size": 224,
        "eval_resize": "center_crop",
        "backbone": "resnet50",
        "head": "gap",
        "version": 1,
        **change,
    }
    (tmp_path / MODEL_RECORD).write_text(json.dumps(raw))
    with pytest.raises(UserError, match=match):
        read_model_record(tmp_path)
