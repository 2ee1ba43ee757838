"""Training images prepared on a tf.data service cluster (``input.data_service``).

With ``input.data_service=grpc://HOST:PORT`` (the dispatcher of
``python -m keras_art.data_service``), an epoch's pipeline is split in two:

- **on the service's workers**: the epoch's examples in `epoch_order`'s order
  (paths and labels, plus each example's position in that order), then read,
  decode, crop and the per-image augmentation, each image seeded by ``(seed +
  epoch, position)``; the augmented image travels as uint8 (a quarter of the
  bytes; at most 0.5 grey level from the float values);
- **in the trainer**: batching, one-hot targets and weights, MixUp/CutMix, the
  multi-size resize, prefetch (and ``augment.on_device``'s batch ops in the step).

Processing mode: ``ShardingPolicy.DYNAMIC`` (TensorFlow's "distributed_epoch").
The dispatcher hands the epoch's examples out in splits to whichever worker asks
next, so every example the sampler drew for the epoch is prepared by exactly one
worker, once: class balance and the epoch's size hold exactly, and each image gets
the same augmentation draws whichever worker prepares it. What changes against the
in-process pipeline: the order in which prepared images arrive, so which images
share a batch (and so MixUp/CutMix pairs) differs from run to run; the per-image
draws differ from the in-process pipeline's (seeded by position instead of a
stream), and a resume repeats the interrupted epoch's images and draws, not its
batches.

When a worker dies (measured with TF 2.21, `tests/data/pipeline/test_data_service.py`):
the dispatcher gives it up after its worker timeout (``--worker-timeout``, 30 s by
default), but the trainer's reader keeps waiting for the dead worker's task until a
worker comes back at the same ``HOST:PORT``. Run workers under a supervisor that
restarts them in place (systemd ``Restart=always``, a Kubernetes pod with a fixed
address, or a shell loop): the restarted worker takes the task over, the epoch ends
short by at most the split the dead one held (DYNAMIC sharding visits each example
at most once; the trainer runs until the data ends) and the next epoch is whole. A
worker that never returns stalls the run: stop it (Ctrl-C), restart the cluster and
``--resume`` the run from its last completed epoch. A dispatcher started with
``--work-dir`` journals its state there and can itself be restarted on its port.

Every worker reads the image files at the paths the trainer has: they share a
filesystem (or the same mount). TFRecord input (``input.tfrecords``) is not sent
to the service.
"""

from __future__ import annotations

import tensorflow as tf

from keras_art.config import check_data_service_address


def element_seed(base_seed: int, position):
    """The stateless seed of the example at ``position`` in an epoch's order."""
    return tf.stack([tf.constant(base_seed, tf.int64), tf.cast(position, tf.int64)])


def to_service_element(el: dict) -> dict:
    """What a worker sends: the augmented image as uint8, the labels, no position."""
    out = {k: v for k, v in el.items() if k != "position"}
    image = tf.clip_by_value(el["image"], 0.0, 255.0)
    out["image"] = tf.cast(tf.round(image), tf.uint8)
    return out


def distribute(ds: tf.data.Dataset, address: str, batch: int) -> tf.data.Dataset:
    """``ds`` prepared on the service at ``address`` (each element once, DYNAMIC
    sharding, see the module doc), back one by one as float32 images in the
    trainer. Elements travel in groups of ``batch`` (one request each; the last
    group of each worker may be smaller): one request per image costs the trainer
    more CPU than preparing the image would."""
    service = tf.data.experimental.service
    ds = ds.batch(batch).apply(
        service.distribute(
            processing_mode=service.ShardingPolicy.DYNAMIC,
            service=check_data_service_address(address),
            # uint8 images compress poorly; compressing would cost the trainer's
            # CPU (decompression) the service is there to save.
            compression=None,
        )
    )
    ds = ds.map(
        lambda el: {**el, "image": tf.cast(el["image"], tf.float32)},
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    return ds.unbatch()
