"""Reusable Keras layers: one public layer per file."""

from keras_art.layers.attention_pooling import AttentionPooling
from keras_art.layers.directional_bigru import DirectionalBiGRU
from keras_art.layers.image_normalization import ImageNormalization
from keras_art.layers.spatial_pyramid_pooling import SpatialPyramidPooling2D

__all__ = [
    "AttentionPooling",
    "DirectionalBiGRU",
    "ImageNormalization",
    "SpatialPyramidPooling2D",
]
