"""`train_overlap`: a run split before near-duplicates were grouped is checked."""

import csv
import io
import json

from PIL import Image

from keras_art.evaluation.train_overlap import train_overlap
from keras_art.run_dir import RunDir
from tests.data.image_fixtures import near_copies, painting_like


def _run(tmp_path, rows, data_report, config_data=None):
    """A run directory with just what `train_overlap` reads."""
    run = tmp_path / "run"
    run.mkdir(parents=True)
    data = {"cache_dir": str(tmp_path / "cache"), **(config_data or {})}
    (run / "config.json").write_text(json.dumps({"data": data}))
    (run / "data_report.json").write_text(json.dumps(data_report))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "style", "split"])
    writer.writerows(rows)
    (run / "splits.csv").write_text(buffer.getvalue())
    return RunDir(run)


def _images(tmp_path):
    paths = []
    for seed in range(3):
        painting = Image.fromarray(painting_like(120, 160, seed=seed))
        paths.append(tmp_path / f"p{seed}.jpg")
        painting.save(paths[-1])
    copy = tmp_path / "copy.png"
    near_copies(Image.open(paths[0]))["letterboxed"].save(copy)
    return [str(p) for p in paths], str(copy)


def test_a_test_copy_of_a_train_image_is_counted_and_named(tmp_path):
    (a, b, c), copy = _images(tmp_path)
    rows = [[a, "x", "train"], [b, "y", "train"], [copy, "x", "test"], [c, "y", "test"]]
    run = _run(tmp_path, rows, {"splits": {}})
    record, warning = train_overlap(run, [copy, c], "test", own_split=True)
    assert record["count"] == 1 and record["of"] == 2 and record["threshold"] == 10
    assert record["examples"] == [
        {"file": copy, "train": a, "distance": record["max_distance"]}
    ]
    assert warning.startswith(
        f"1 test images have a near-duplicate in train (max distance "
        f"{record['max_distance']}): e.g. {copy} ~ {a} ("
    )
    assert "train a new run for a clean split" in warning
    # Not checked: a run with grouping turned off, a run that grouped its splits.
    off = _run(tmp_path / "off", rows, {}, {"near_duplicate_distance": None})
    assert train_overlap(off, [copy, c], "test", own_split=True) == (None, None)
    grouped = _run(tmp_path / "g", rows, {"near_duplicates": {"max_distance": 10}})
    assert train_overlap(grouped, [copy, c], "test", own_split=True) == (None, None)
    # ... but another collection evaluated on it still is.
    record, warning = train_overlap(grouped, [copy], "folder-x", own_split=False)
    assert record["count"] == 1 and "scores are optimistic" in warning
