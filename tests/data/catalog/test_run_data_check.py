import numpy as np
import pytest

from keras_art.data.catalog.prepare import PreparedData, write_data_files
from keras_art.data.catalog.run_data_check import check_same_data
from keras_art.errors import UserError


def _prepared(files=("a.jpg", "b.jpg", "c.jpg"), labels=(0, 1, -1), names=None):
    return PreparedData(
        files=list(files),
        labels={"style": np.array(labels)},
        class_names={"style": names or ["Baroque", "Rococo"]},
        split=np.array(["train", "val", "test"][: len(files)]),
        tasks=("style",),
        report={},
    )


def test_same_data_passes(tmp_path):
    write_data_files(_prepared(), tmp_path)
    check_same_data(_prepared(), tmp_path)


@pytest.mark.parametrize(
    "changed, match",
    [
        (_prepared(names=["Baroque", "Rococo", "Romanticism"]), "classes"),
        (_prepared(names=["Rococo", "Baroque"]), "another order"),
        (_prepared(labels=(1, 1, -1)), "changed split or label"),
        (_prepared(files=("a.jpg", "b.jpg")), "gone"),
        (_prepared(files=("a.jpg", "b.jpg", "d.jpg")), "new or changed"),
    ],
)
def test_changed_data_is_one_clear_error(tmp_path, changed, match):
    write_data_files(_prepared(), tmp_path)
    with pytest.raises(UserError, match=match) as info:
        check_same_data(changed, tmp_path)
    assert "\n" not in str(info.value) and "new run" in str(info.value)
