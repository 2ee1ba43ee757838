"""keras_art: classify paintings by artist, genre and style with Keras 3.

``import keras_art`` registers the package's Keras layers (as ``import keras_hub``
does), so ``keras.models.load_model("best.keras")`` works after it. Nothing else
happens at import: global policies (mixed precision, strategies, seeds) are set only
by the command entry points.
"""

__version__ = "0.1.0"

from keras_art import layers  # noqa: E402,F401 - registers the serializable layers
from keras_art.registry import TASKS  # noqa: E402,F401
