"""keras_art: classify paintings by artist, genre and style with Keras 3.

``import keras_art`` registers the package's Keras layers (as ``import keras_hub``
does), so ``keras.models.load_model("best.keras")`` works after it. A command
(``python -m keras_art.*``) also quiets TensorFlow's C++ start-up lines first
(`keras_art.startup`). Nothing else happens at import: global policies (mixed
precision, strategies, seeds) are set only by the command entry points.
"""

__version__ = "0.1.0"

from keras_art.startup import quiet_tensorflow_for_commands  # noqa: E402

quiet_tensorflow_for_commands()  # commands only: their errors without TF's C++ lines

from keras_art import layers  # noqa: E402,F401 - registers the serializable layers
from keras_art.registry import TASKS  # noqa: E402,F401
