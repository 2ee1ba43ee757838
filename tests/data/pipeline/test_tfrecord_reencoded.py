"""Prepared shards: images re-encoded once at a bounded size, resumable writes."""

import io

import numpy as np
import pytest
from PIL import Image

from keras_art.config import AugmentConfig, InputConfig
from keras_art.data.pipeline import tfrecord
from keras_art.data.pipeline.dataset import build_dataset
from keras_art.data.pipeline.reencode import ImageEncoding, encode_image
from keras_art.data.pipeline.tfrecord import (
    PROGRESS,
    read_manifest,
    read_shards,
    write_shards,
)
from keras_art.errors import UserError
from tests.data.image_fixtures import encode, patchwork, textured, write_images

N, B, S = 14, 4, 32
SHORT_32 = ImageEncoding("short_side", 32, 85)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    # 40-42 x 56 px, each its own colours: a record's pixels tell its source.
    return write_images(tmp_path_factory.mktemp("imgs"), N, make=patchwork)


def _labels():
    return {"style": np.array([0] * 8 + [1] * 4 + [2, 2])}


def _size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_reencode_bounds_the_side_and_keeps_aspect_ratio():
    jpeg = encode(textured(120, 200), "jpeg")  # 200 x 120
    short = encode_image(jpeg, ImageEncoding("short_side", 60, 90))
    assert _size(short) == (100, 60) and short[:2] == b"\xff\xd8"
    assert _size(encode_image(jpeg, ImageEncoding("max_side", 50, 90))) == (50, 30)
    # Lower quality, fewer bytes: the quality is applied.
    low = encode_image(jpeg, ImageEncoding("short_side", 60, 30))
    assert len(low) < len(short)


def test_images_within_the_bound_keep_their_bytes():
    for fmt in ("jpeg", "png_rgba", "gif"):
        data = encode(textured(40, 56), fmt)
        assert encode_image(data, ImageEncoding("short_side", 40, 90)) is data
        assert encode_image(data, ImageEncoding()) is data  # original encoding


def _grey16(array) -> bytes:
    buf = io.BytesIO()  # PIL reads it as mode I;16
    Image.fromarray(array[..., 0].astype(np.uint16) * 257).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["png_rgba", "png_grey", "png16", "grey16"])
def test_other_formats_become_rgb_jpegs_with_the_pixels_tf_decodes(fmt):
    import tensorflow as tf

    from keras_art.data.pipeline.decode import decode_rgb

    array = textured(64, 96, seed=3)
    data = _grey16(array) if fmt == "grey16" else encode(array, fmt)
    out = encode_image(data, ImageEncoding("short_side", 32, 95))
    assert out[:2] == b"\xff\xd8" and Image.open(io.BytesIO(out)).mode == "RGB"
    # What training would have decoded from the original, at the prepared size.
    want = tf.image.resize(decode_rgb(data), [32, 48], antialias=True).numpy()
    got = decode_rgb(out).numpy().astype(np.float32)
    assert np.abs(got - want).mean() < 6  # 16-bit is scaled, not clipped to white


def test_prepared_shards_record_the_encoding_and_train(files, tmp_path):
    out = tmp_path / "prepared"
    write_shards(files, _labels(), out, "train", shard_size=5, encoding=SHORT_32,
                 source="folder", threads=2)  # fmt: skip
    write_shards(files, _labels(), out, "val", shard_size=5, encoding=SHORT_32)
    manifest = read_manifest(out)
    assert manifest["images"]["encoding"] == "jpeg"
    assert manifest["images"]["bound"] == "short_side"
    assert (manifest["images"]["side"], manifest["images"]["quality"]) == (32, 85)
    assert manifest["source"] == "folder"
    train = manifest["splits"]["train"]
    assert train["count"] == N and train["reencoded"] == N
    assert train["bytes"] > 0 and train["source_bytes"] > 0
    records = list(read_shards(out, "train"))
    assert all(min(_size(r["image"].numpy())) == 32 for r in records)

    augment = AugmentConfig(image_size=S, crop_scale=[0.5, 1.0])
    inp = InputConfig(batch_size=B, shuffle_buffer=64, tfrecords=str(out))
    ds = build_dataset(files, _labels(), {"style": 3}, augment, inp, training=True,
                       seed=0)  # fmt: skip
    batches = list(ds.as_numpy_iterator())
    assert len(batches) == N // B and batches[0][0].shape == (B, S, S, 3)
    # Evaluation reads prepared shards with its own resize: each record is close
    # to its own original, and closer to it than to any other.
    ev = build_dataset(files, _labels(), {"style": 3}, augment, inp, training=False)
    prepared = {p: im for p, im in _eval_images(ev, out)}
    assert sorted(prepared) == sorted(files)
    plain = InputConfig(batch_size=B)
    originals = _images(build_dataset(files, _labels(), {"style": 3}, augment, plain,
                                      training=False))  # fmt: skip
    for i, f in enumerate(files):
        diffs = np.abs(prepared[f][None] - originals).mean(axis=(1, 2, 3))
        assert np.argmin(diffs) == i, (f, diffs.round(1))
        assert diffs[i] < 8


def _images(ds):
    return np.concatenate([x for x, _, _ in ds.as_numpy_iterator()])


def _eval_images(ds, out):
    # Evaluation keeps the record order: pair it with the records' paths.
    paths = [r["path"].numpy().decode() for r in read_shards(out, "val")]
    return zip(paths, _images(ds), strict=True)


class _Killed(Exception):
    pass


def test_a_stopped_write_resumes_without_rewriting_finished_shards(
    files, tmp_path, monkeypatch
):
    out = tmp_path / "prepared"
    real = tfrecord._write_shard_file
    written = []

    def write_then_stop(path, *args):
        if written:
            raise _Killed  # the process dies while writing the second shard
        written.append(path.name)
        return real(path, *args)

    monkeypatch.setattr(tfrecord, "_write_shard_file", write_then_stop)
    with pytest.raises(_Killed):
        write_shards(files, _labels(), out, "train", shard_size=5, encoding=SHORT_32)
    first = out / "train-00000-of-00003.tfrecord"
    stamp = first.stat().st_mtime_ns
    assert not (out / "manifest.json").exists()

    def counting(path, *args):
        written.append(path.name)
        return real(path, *args)

    written.clear()
    monkeypatch.setattr(tfrecord, "_write_shard_file", counting)
    write_shards(files, _labels(), out, "train", shard_size=5, encoding=SHORT_32)
    assert written == ["train-00001-of-00003.tfrecord", "train-00002-of-00003.tfrecord"]
    assert first.stat().st_mtime_ns == stamp
    paths = [r["path"].numpy().decode() for r in read_shards(out, "train")]
    assert sorted(paths) == sorted(files)  # every record exactly once
    assert not list(out.glob(".*.tmp"))

    written.clear()  # finished: a re-run writes nothing
    write_shards(files, _labels(), out, "train", shard_size=5, encoding=SHORT_32)
    assert written == []
    # Other labels for the same files: those shards are rewritten, not kept.
    relabelled = {"style": _labels()["style"][::-1].copy()}
    write_shards(files, relabelled, out, "train", shard_size=5, encoding=SHORT_32)
    assert len(written) == 3
    # A shard whose file was truncated is rewritten.
    written.clear()
    first.write_bytes(first.read_bytes()[:10])
    write_shards(files, relabelled, out, "train", shard_size=5, encoding=SHORT_32)
    assert written == ["train-00000-of-00003.tfrecord"]


def test_another_encoding_into_the_same_folder_is_a_user_error(files, tmp_path):
    out = tmp_path / "prepared"
    write_shards(files[:5], {}, out, "val", encoding=SHORT_32)
    (out / "manifest.json").unlink()  # the progress file alone records it
    assert (out / PROGRESS).is_file()
    for other in (ImageEncoding(), ImageEncoding("short_side", 32, 90)):
        with pytest.raises(UserError, match="short_side 32 quality 85.*another out"):
            write_shards(files[:5], {}, out, "val", encoding=other)
    plain = tmp_path / "plain"
    write_shards(files[:5], {}, plain, "val")
    with pytest.raises(UserError, match="original bytes.*max_side 64"):
        write_shards(
            files[:5], {}, plain, "val", encoding=ImageEncoding("max_side", 64)
        )
    with pytest.raises(UserError, match="at least 16"):
        ImageEncoding("short_side", 8).validate()
