"""TF Serving warm-up requests, written into every SavedModel export.

TF Serving replays ``<version>/assets.extra/tf_serving_warmup_requests`` (a TFRecord
file of ``PredictionLog`` protos) when it loads a version, before the version takes
traffic: the first real request then finds the graph traced and its kernels and
memory pools set up, instead of paying for them (seconds on a ResNet50 with the
decode in the graph). See TF Serving's "SavedModel Warmup" guide.

The requests call ``serving_default`` on encoded images at the sizes users send:
the run's own test images where they are still on disk (real paintings, real
sizes), generated JPEGs of a typical scan's size otherwise. One request per batch
size in `WARMUP_BATCH_SIZES`, so the batch sizes a batching server forms first are
traced as well.

The protos come from ``tensorflow-serving-api``. Its wheel requires the
``tensorflow`` package, which would install a second TensorFlow next to
``tensorflow-cpu``; it is pure protos, so install it with ``pip install --no-deps
tensorflow-serving-api`` (the ``.ci/run`` and README commands do). Without it the
export still works, says the warm-up file was skipped and how to get it, and records
that in the export metadata.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_art.models.exported import METADATA_DIR, SIGNATURE

logger = logging.getLogger(__name__)

# TF Serving's fixed file name inside assets.extra.
WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 4)
WARMUP_INPUT = "image_bytes"
# A generated image stands in for a user's upload when the run's images are gone:
# the size of a typical museum scan sent to a web service.
GENERATED_SIZE = (1024, 768)
INSTALL_HINT = "pip install --no-deps 'tensorflow-serving-api>=2.21,<2.22'"


def serving_api_available() -> bool:
    """True when ``tensorflow_serving.apis`` (the protos) can be imported."""
    try:
        from tensorflow_serving.apis import prediction_log_pb2  # noqa: F401
    except ImportError:
        return False
    return True


def warmup_images(files: Sequence[str], count: int) -> tuple[list[bytes], str]:
    """``count`` encoded images for the requests and where they came from:
    the first readable ``files`` (the run's test split), topped up with generated
    JPEGs (`generated_painting`)."""
    images: list[bytes] = []
    for file in files:
        if len(images) == count:
            break
        try:
            images.append(Path(file).read_bytes())
        except OSError:
            continue
    source = f"{len(images)} test-split images" if images else ""
    missing = count - len(images)
    if missing:
        images += [generated_painting(seed) for seed in range(missing)]
        source = ", ".join(filter(None, [source, f"{missing} generated JPEGs"]))
    return images, source


def generated_painting(seed: int, size: tuple[int, int] = GENERATED_SIZE) -> bytes:
    """A JPEG of ``size`` (width, height) with a painting's coarse structure:
    smooth colour fields plus brush-scale noise (a flat image would decode
    unrealistically fast)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    fields = rng.uniform(0, 255, (6, 8, 3)).astype(np.float32)
    base = tf.image.resize(fields[None], (height, width), method="bicubic")[0].numpy()
    noise = rng.normal(0, 18, (height, width, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def write_warmup_requests(
    version_dir: str | Path,
    images: Sequence[bytes],
    model_name: str,
    batch_sizes: Sequence[int] = WARMUP_BATCH_SIZES,
) -> Path:
    """Write one ``serving_default`` request per batch size (cycling ``images``)
    to ``version_dir/assets.extra/tf_serving_warmup_requests``; return the file."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = Path(version_dir) / METADATA_DIR / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for size in batch_sizes:
            batch = [images[i % len(images)] for i in range(size)]
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = SIGNATURE
            request.inputs[WARMUP_INPUT].CopyFrom(tf.make_tensor_proto(batch))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(path: str | Path) -> list:
    """The ``PredictRequest`` protos of a warm-up file, in file order."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        requests.append(prediction_log_pb2.PredictionLog.FromString(record).predict_log)
    return [log.request for log in requests]


def plan_warmup(files: Sequence[str]) -> tuple[list[bytes], dict]:
    """The images of the warm-up requests (none when ``tensorflow-serving-api``
    is missing) and what the export metadata records about them: ``written``,
    the file, the batch sizes and the images' source, or why there is no file."""
    if not serving_api_available():
        logger.warning(
            "export: tensorflow-serving-api is not installed, so no TF Serving "
            "warm-up requests will be written (the first request will be slow). "
            "Install it with: %s",
            INSTALL_HINT,
        )
        reason = f"tensorflow-serving-api is not installed ({INSTALL_HINT})"
        return [], {"written": False, "reason": reason}
    images, source = warmup_images(files, max(WARMUP_BATCH_SIZES))
    return images, {
        "written": True,
        "file": f"{METADATA_DIR}/{WARMUP_FILE}",
        "batch_sizes": list(WARMUP_BATCH_SIZES),
        "signature": SIGNATURE,
        "images": source,
    }
