import keras
from keras import ops

_DIRECTIONS = ("rows", "cols")


@keras.saving.register_keras_serializable(package="keras_art")
class DirectionalBiGRU(keras.layers.Layer):
    """Run a stacked bidirectional GRU along the rows or columns of a feature map.

    ``direction="rows"`` treats every row of a ``(batch, H, W, C)`` map as a
    sequence of ``W`` steps: the map is reshaped to ``(batch * H, W, C)``, passed
    through ``num_layers`` bidirectional GRUs (forward and backward states
    concatenated) and averaged over ``W``, giving ``(batch, H, 2 * units)``.
    ``direction="cols"`` transposes the map first, so columns are the sequences
    and the output is ``(batch, W, 2 * units)``. ``H`` and ``W`` may be unknown
    until call time.

    The GRUs keep the cuDNN-eligible settings (tanh, sigmoid, ``use_bias``,
    ``reset_after``, no recurrent dropout, not unrolled), so they use the fused
    kernel on a GPU. ``dropout`` is applied between stacked layers (PyTorch's
    ``nn.GRU(dropout=...)`` semantics), not inside the recurrence.

    Args:
        units: int. GRU units per direction. Defaults to 256.
        num_layers: int. Number of stacked bidirectional GRU layers. Defaults
            to 2.
        direction: ``"rows"`` or ``"cols"``. Defaults to ``"rows"``.
        dropout: float in ``[0, 1)``. Dropout on the outputs of every GRU layer
            but the last, during training. Defaults to 0.
        **kwargs: Standard layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: Tensor of shape ``(batch, height, width, channels)``.
        training: Python bool; enables dropout.

    Returns:
        ``(batch, height, 2 * units)`` for rows, ``(batch, width, 2 * units)``
        for columns.

    Example:

    >>> x = np.random.rand(2, 7, 5, 16).astype("float32")
    >>> DirectionalBiGRU(units=8, num_layers=2, direction="cols")(x).shape
    TensorShape([2, 5, 16])

    Reference:
        Seed 000 (keras_art design notes): ResNet50 -> BiGRU (row) + BiGRU
        (column) -> attention pooling.
    """

    def __init__(
        self, units=256, num_layers=2, direction="rows", dropout=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        for arg, value in (("units", units), ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"`{arg}` must be a positive integer. Received: {arg}={value}"
                )
        if direction not in _DIRECTIONS:
            raise ValueError(
                f"Unknown direction; expected one of {_DIRECTIONS}. "
                f"Received: direction={direction}"
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        self.units = units
        self.num_layers = num_layers
        self.direction = direction
        self.dropout = float(dropout)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "DirectionalBiGRU expects inputs of shape (batch, height, width, "
                f"channels) with known channels. Received: input_shape={input_shape}"
            )
        features = input_shape[-1]
        self.bigrus = []
        self.dropouts = []
        for index in range(self.num_layers):
            gru = keras.layers.GRU(
                self.units,
                activation="tanh",
                recurrent_activation="sigmoid",
                use_bias=True,
                reset_after=True,
                recurrent_dropout=0.0,
                unroll=False,
                return_sequences=True,
                dtype=self.dtype_policy,
                name=f"gru_{index}",
            )
            bigru = keras.layers.Bidirectional(
                gru,
                merge_mode="concat",
                dtype=self.dtype_policy,
                name=f"bigru_{index}",
            )
            bigru.build((None, None, features))
            self.bigrus.append(bigru)
            features = 2 * self.units
            if index < self.num_layers - 1:
                dropout = keras.layers.Dropout(
                    self.dropout, dtype=self.dtype_policy, name=f"dropout_{index}"
                )
                dropout.build((None, None, features))
                self.dropouts.append(dropout)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        if self.direction == "cols":
            x = ops.transpose(x, (0, 2, 1, 3))
        shape = ops.shape(x)
        batch, lines, steps = shape[0], shape[1], shape[2]
        x = ops.reshape(x, (-1, steps, shape[3]))
        for index, bigru in enumerate(self.bigrus):
            x = bigru(x, training=training)
            if index < len(self.dropouts):
                x = self.dropouts[index](x, training=training)
        x = ops.mean(x, axis=1)
        return ops.reshape(x, (batch, lines, 2 * self.units))

    def compute_output_shape(self, input_shape):
        lines = input_shape[1] if self.direction == "rows" else input_shape[2]
        return (input_shape[0], lines, 2 * self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "num_layers": self.num_layers,
                "direction": self.direction,
                "dropout": self.dropout,
            }
        )
        return config
