"""keras_art: classify paintings by artist, genre and style with Keras 3.

Importing the package is cheap and has no side effects: TensorFlow is imported by the
modules that need it, and global policies are set only by the command entry points.
"""

__version__ = "0.1.0"

TASKS = ("artist", "genre", "style")
