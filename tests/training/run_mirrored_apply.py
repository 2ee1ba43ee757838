"""Subprocess driver: `GroupAdamW.apply` under MirroredStrategy on 2 logical CPUs.

Each replica holds its own gradient; the step sums them (``all_reduce``) and hands
the sums to `GroupAdamW.apply`, as `Trainer` does. Prints a JSON line with the
optimizers' first moments and the weights after two steps.

python -m tests.training.run_mirrored_apply
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Replica r's gradients in step s: GRADS[s][r] = (head, backbone).
GRADS = [
    [([3.0, -4.0, 0.0], [0.0, 0.0, 1.0]), ([0.0, 0.0, 2.0], [1.0, 0.0, 0.0])],
    [([0.1, 0.2, 0.0], [0.0, 0.1, 0.0]), ([0.0, -0.1, 0.0], [0.2, 0.0, 0.1])],
]


def main() -> int:
    from keras_art.training.strategies import setup_logical_cpus

    setup_logical_cpus(2)
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_art.training.optimizers import GroupAdamW

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        head = keras.Variable(np.ones(3, "float32"), name="head")
        bb = keras.Variable(np.ones(3, "float32"), name="bb")
        opt = GroupAdamW({"head": 0.1, "backbone": 0.01}, global_clipnorm=1.0)
        opt.build({"head": [head], "backbone": [bb]})

    @tf.function
    def step(per_replica):
        def replica(grads):
            ctx = tf.distribute.get_replica_context()
            summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, list(grads))
            opt.apply(summed, [head, bb])

        strategy.run(replica, args=(per_replica,))

    for grads in GRADS:
        values = strategy.experimental_distribute_values_from_function(
            lambda ctx, g=grads: tuple(
                tf.constant(x, "float32") for x in g[ctx.replica_id_in_sync_group]
            )
        )
        step(values)
    moments = {
        group: [v.numpy().tolist() for v in o.variables if "momentum" in v.path][0]
        for group, o in opt.optimizers.items()
    }
    print(
        json.dumps(
            {
                "moments": moments,
                "head": head.numpy().tolist(),
                "backbone": bb.numpy().tolist(),
                "iterations": int(opt.iterations.numpy()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
