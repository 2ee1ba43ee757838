"""Dataset preparation scripts (``python -m data_scripts.<name>``): TFRecord shards,
statistics. They use the public keras_art API; keras_art never imports them."""
