"""Input pipelines: decode, augment, batch, TFRecord shards (tf.data)."""
