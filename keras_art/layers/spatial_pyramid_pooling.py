import keras
from keras import ops

_POOLINGS = ("max", "avg")


@keras.saving.register_keras_serializable(package="keras_art")
class SpatialPyramidPooling2D(keras.layers.Layer):
    """Pool a feature map of any height and width into a fixed-length vector.

    For each level ``n`` the map is split into an ``n x n`` grid of bins and each
    bin is max- or average-pooled, giving ``n * n * channels`` values per level.
    Bin ``i`` of ``n`` along an axis of length ``L`` covers
    ``[floor(i * L / n), ceil((i + 1) * L / n))`` (the adaptive-pooling rule): the
    bins tile the axis, overlap by at most one cell when ``L`` is not a multiple
    of ``n``, and are never empty, so maps smaller than the finest level (a 2 x 2
    map at level 3) still work. ``H`` and ``W`` may be unknown until call time.

    The output is ordered level by level (in ``levels`` order), bins row-major
    within a level, channels last within a bin.

    Args:
        levels: sequence of positive ints, the grid sizes. Defaults to
            ``(1, 2, 3)`` (``14 * channels`` outputs).
        pooling: ``"max"`` or ``"avg"``. Defaults to ``"max"``.
        **kwargs: Standard layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: Tensor of shape ``(batch, height, width, channels)``.

    Returns:
        Tensor of shape ``(batch, sum(n * n for n in levels) * channels)``.

    Example:

    >>> x = np.random.rand(2, 7, 5, 8).astype("float32")
    >>> SpatialPyramidPooling2D(levels=(1, 2, 3), pooling="avg")(x).shape
    TensorShape([2, 112])

    Reference:
        He et al., "Spatial Pyramid Pooling in Deep Convolutional Networks for
        Visual Recognition", 2015; seed 002 (GAP vs SPP heads).
    """

    def __init__(self, levels=(1, 2, 3), pooling="max", **kwargs):
        super().__init__(**kwargs)
        try:
            levels = [int(n) for n in levels]
        except (TypeError, ValueError):
            raise ValueError(
                f"`levels` must be a sequence of positive integers. "
                f"Received: levels={levels}"
            ) from None
        if not levels or any(n < 1 for n in levels):
            raise ValueError(
                f"`levels` must be a non-empty sequence of positive integers. "
                f"Received: levels={levels}"
            )
        if pooling not in _POOLINGS:
            raise ValueError(
                f"Unknown pooling; expected one of {_POOLINGS}. "
                f"Received: pooling={pooling}"
            )
        self.levels = levels
        self.pooling = pooling

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "SpatialPyramidPooling2D expects inputs of shape "
                f"(batch, height, width, channels). Received: input_shape={input_shape}"
            )
        self.built = True

    def call(self, inputs):
        shape = ops.shape(inputs)
        height, width = shape[1], shape[2]
        reduce = ops.max if self.pooling == "max" else ops.mean
        pooled = []
        for n in self.levels:
            for i in range(n):
                h0, h1 = _bin_bounds(i, n, height)
                for j in range(n):
                    w0, w1 = _bin_bounds(j, n, width)
                    pooled.append(reduce(inputs[:, h0:h1, w0:w1, :], axis=(1, 2)))
        return ops.concatenate(pooled, axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        bins = sum(n * n for n in self.levels)
        return (input_shape[0], None if channels is None else bins * channels)

    def get_config(self):
        config = super().get_config()
        config.update({"levels": list(self.levels), "pooling": self.pooling})
        return config


def _bin_bounds(i, n, length):
    start = (i * length) // n
    end = -((-(i + 1) * length) // n)  # ceil((i + 1) * length / n)
    return start, end
