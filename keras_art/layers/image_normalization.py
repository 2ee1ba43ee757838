import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_art")
class ImageNormalization(keras.layers.Layer):
    """RGB pixels in [0, 255] to what a backbone's ImageNet weights expect.

    Computes ``(x[..., ::-1] if bgr else x) - mean) / std`` per channel in float32
    and returns the layer's compute dtype. It is the first layer of every keras_art
    backbone, so a saved model takes plain RGB pixels (float or uint8, any size) and
    training, evaluation, export and notebooks cannot normalise differently. The
    numbers come from `keras_art.registry.BACKBONES`.

    Args:
        mean: three per-channel means on the 0-255 scale, in the output channel
            order (BGR when ``bgr``).
        std: three per-channel standard deviations on the same scale.
        bgr: reverse the channels (RGB -> BGR) before subtracting ``mean``.
        **kwargs: Standard layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: Tensor of shape ``(..., 3)``, RGB in [0, 255], any numeric dtype.

    Returns:
        Tensor of the input's shape in the layer's compute dtype.

    Example:

    >>> x = np.full((1, 2, 2, 3), 128.0, "float32")
    >>> ImageNormalization(mean=[103.939, 116.779, 123.68], bgr=True)(x)[0, 0, 0]
    [24.061, 11.221, 4.32]

    Reference:
        ``keras.applications.resnet50.preprocess_input`` ("caffe" mode).
    """

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), bgr=False, **kwargs):
        super().__init__(**kwargs)
        mean, std = [float(v) for v in mean], [float(v) for v in std]
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(
                f"`mean` and `std` need one value per RGB channel. Received: "
                f"mean={mean}, std={std}"
            )
        if any(s <= 0 for s in std):
            raise ValueError(f"`std` values must be positive. Received: std={std}")
        self.mean = mean
        self.std = std
        self.bgr = bool(bgr)

    def build(self, input_shape):
        if input_shape[-1] != 3:
            raise ValueError(
                "ImageNormalization expects RGB inputs (last axis 3). Received: "
                f"input_shape={input_shape}"
            )
        self.built = True

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        if self.bgr:
            x = ops.flip(x, axis=-1)
        x = (x - ops.convert_to_tensor(self.mean, "float32")) / ops.convert_to_tensor(
            self.std, "float32"
        )
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"mean": list(self.mean), "std": list(self.std), "bgr": self.bgr})
        return config
