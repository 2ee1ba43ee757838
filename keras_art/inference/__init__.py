"""Classify image files with a trained model of any kind: SavedModel, TFLite or run.

`predict` is the library function behind ``python -m keras_art.predict``;
`load_model` gives any model kind one interface (`LoadedModel`).
"""

from keras_art.inference.backends import LoadedModel, load_model
from keras_art.inference.predict import PredictResult, format_predictions, predict

__all__ = [
    "LoadedModel",
    "PredictResult",
    "format_predictions",
    "load_model",
    "predict",
]
