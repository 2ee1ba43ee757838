import json

import numpy as np
import pytest

from keras_art.atomic_files import atomic_write_json, atomic_write_text


def test_atomic_json_handles_numpy_and_leaves_no_temp(tmp_path):
    out = atomic_write_json(
        tmp_path / "sub" / "a.json", {"n": np.int64(3), "v": np.ones(2)}
    )
    assert json.loads(out.read_text()) == {"n": 3, "v": [1.0, 1.0]}
    assert [p.name for p in out.parent.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = atomic_write_text(tmp_path / "a.json", "old")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
