"""Export a finished run for serving: a TF Serving SavedModel or a TFLite file.

`export_saved_model` and `export_tflite` are the library functions behind
``python -m keras_art.export``; `find_gpu_only_ops` reads an exported graph for ops a
CPU cannot run.
"""

from keras_art.export.graph_scan import find_gpu_only_ops
from keras_art.export.saved_model import export_saved_model
from keras_art.export.tflite import export_tflite

__all__ = ["export_saved_model", "export_tflite", "find_gpu_only_ops"]
