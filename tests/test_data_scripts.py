"""The data scripts end to end on a tiny embedded sample; bad flags exit 2."""

import csv

import pytest

from data_scripts import dataset_stats, make_tfrecords
from keras_art.data.pipeline.tfrecord import read_manifest, read_shards

TINY = ["--set", "data.sample_images=48", "--set", "data.validate=false"]


def test_make_tfrecords_writes_every_split(tmp_path, capsys):
    out = tmp_path / "shards"
    argv = ["--task", "multi", "--out", str(out), "--shard-size", "16", *TINY]
    assert make_tfrecords.main(argv) == 0
    manifest = read_manifest(out)
    assert manifest["tasks"] == ["artist", "genre", "style"]
    assert manifest["source"] == "sample"
    assert sum(s["count"] for s in manifest["splits"].values()) == 48
    assert len(manifest["class_names"]["artist"]) == 8
    train = list(read_shards(out, "train"))
    assert len(train) == manifest["splits"]["train"]["count"]
    assert len(manifest["splits"]["train"]["shards"]) == -(-len(train) // 16)
    first = train[0]
    assert first["image"].numpy()[:2] == b"\xff\xd8"  # JPEG bytes as written
    assert all(int(first[t]) >= 0 for t in ("artist", "genre", "style"))
    assert "| train |" in capsys.readouterr().out


def test_make_tfrecords_takes_the_task_from_config_without_task(tmp_path):
    # A run's config.json (task style) is enough: no --task silently becomes artist.
    config = tmp_path / "config.json"
    config.write_text('{"task": "style"}')
    out = tmp_path / "shards"
    argv = ["--config", str(config), "--out", str(out), *TINY]
    assert make_tfrecords.main(argv) == 0
    assert read_manifest(out)["tasks"] == ["style"]


def test_make_tfrecords_prepared_resumes_and_refuses_other_settings(tmp_path, capsys):
    """--short-side re-encodes images above the bound (recorded in the manifest);
    a re-run with the same flags keeps every finished shard, other flags into the
    same folder exit 2 naming the fix."""
    import io

    from PIL import Image

    out = tmp_path / "prepared"
    argv = ["--out", str(out), "--shard-size", "16", "--short-side", "150", *TINY]
    assert make_tfrecords.main([*argv, "--quality", "80"]) == 0
    manifest = read_manifest(out)
    assert manifest["images"]["bound"] == "short_side"
    assert (manifest["images"]["side"], manifest["images"]["quality"]) == (150, 80)
    assert manifest["source"] == "sample"
    records = [r for s in manifest["splits"] for r in read_shards(out, s)]
    sizes = [Image.open(io.BytesIO(r["image"].numpy())).size for r in records]
    assert len(records) == 48 and max(min(s) for s in sizes) == 150
    reencoded = sum(e["reencoded"] for e in manifest["splits"].values())
    assert 0 < reencoded < 48  # sample images are ~150-200 px: some kept as they are
    assert "| train |" in capsys.readouterr().out

    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tfrecord")}
    assert make_tfrecords.main([*argv, "--quality", "80"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tfrecord")} == stamps

    assert make_tfrecords.main([*argv, "--quality", "90"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--short-side 150 --quality 80" in err and "another --out" in err


def test_dataset_stats_plots_and_tables(tmp_path, capsys):
    out = tmp_path / "stats"
    assert dataset_stats.main(["--task", "multi", "--out", str(out), *TINY]) == 0
    for name in ("class_distribution_artist.png", "class_distribution_style.png",
                 "image_sizes.png"):  # fmt: skip
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    with open(out / "counts.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    artist = [r for r in rows if r["task"] == "artist"]
    assert len(artist) == 8 and sum(int(r["total"]) for r in artist) == 48
    assert {"train", "val"} <= set(rows[0])
    with open(out / "sizes.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 48
    printed = capsys.readouterr().out
    assert "| task | class |" in printed and "Claude_Monet" in printed


@pytest.mark.parametrize(
    "module, argv, message",
    [
        (make_tfrecords, ["--task", "artist"], "--out"),
        (make_tfrecords, ["--task", "colour", "--out", "x"], "--task"),
        (make_tfrecords, ["--out", "x", "--shard-size", "0"], "--shard-size"),
        (make_tfrecords, ["--out", "x", "--quality", "80"], "--short-side"),
        (make_tfrecords, ["--out", "x", "--max-side", "8"], "--max-side"),
        (
            make_tfrecords,
            ["--out", "x", "--max-side", "64", "--short-side", "64"],
            "not allowed with",
        ),  # fmt: skip
        (dataset_stats, ["--out", "x", "--format", "nope"], "--format"),
        (dataset_stats, ["--out", "x", "--data", "/no/such/dir"], "no such"),
        (dataset_stats, ["--out", "x", "--set", "data.bogus=1"], "bogus"),
    ],
)
def test_bad_flags_exit_2_with_one_line(module, argv, message, tmp_path, capsys):
    assert module.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def _tiny_cfg(**data):
    from keras_art.config import Config

    cfg = Config(task="artist")
    cfg.data.sample_images, cfg.data.validate = 48, False
    for key, value in data.items():
        setattr(cfg.data, key, value)
    return cfg


def test_tfrecords_are_checked_against_the_run_that_reads_them(tmp_path):
    """Shards from make_tfrecords pass the run's check for the same data settings;
    a run with another split seed stops with exit-2 UserError naming the fix.
    Records are written in a shuffled order, not the readers' class order."""
    from keras_art.data.catalog.prepare import prepare_data
    from keras_art.data.pipeline.dataset import make_split_datasets
    from keras_art.errors import UserError

    out = tmp_path / "shards"
    make_tfrecords.make_tfrecords(_tiny_cfg(), str(out), shard_size=64)
    cfg = _tiny_cfg()
    cfg.input.tfrecords = str(out)
    prepared = prepare_data(cfg)
    datasets = make_split_datasets(cfg, prepared)  # checks, then builds
    assert datasets["val"] is not None
    train = [prepared.files[i] for i in prepared.indices("train")]
    records = read_shards(out, "train", cycle_length=1)
    written = [r["path"].numpy().decode() for r in records]
    assert sorted(written) == sorted(train) and written != train

    other = _tiny_cfg(split_seed=7)
    other.input.tfrecords = str(out)
    with pytest.raises(UserError, match="different (train|val|test) split.*"
                       "make_tfrecords"):  # fmt: skip
        make_split_datasets(other, prepare_data(other))
