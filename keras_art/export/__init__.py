"""Export a finished run for serving: a TF Serving SavedModel.

`export_saved_model` is the library function behind ``python -m keras_art.export``;
`find_gpu_only_ops` reads an exported graph for ops a CPU cannot run.
"""

from keras_art.export.graph_scan import find_gpu_only_ops
from keras_art.export.saved_model import export_saved_model

__all__ = ["export_saved_model", "find_gpu_only_ops"]
