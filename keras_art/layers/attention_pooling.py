import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_art")
class AttentionPooling(keras.layers.Layer):
    """Collapse a sequence to one vector with learned attention weights.

    Each step gets a scalar score from a small MLP
    (``Dense(hidden_units, tanh) -> Dense(1)``, or a single ``Dense(1)`` when
    ``hidden_units`` is ``None``); a softmax over the steps turns the scores into
    weights and the output is the weighted sum of the steps. The softmax runs in
    float32 whatever the dtype policy, so ``mixed_float16`` cannot overflow it.
    Masked steps get zero weight; a row whose steps are all masked returns zeros.

    Args:
        hidden_units: int or None. Width of the scoring MLP's hidden layer;
            ``None`` scores each step with a single linear layer. Defaults to 128.
        **kwargs: Standard layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: Tensor of shape ``(batch, steps, features)``; ``steps`` may be
            unknown.
        mask: Optional boolean tensor of shape ``(batch, steps)``; ``False``
            marks steps to ignore.

    Returns:
        Tensor of shape ``(batch, features)``. The weights themselves, e.g. to
        show where the layer looks, come from ``attention_weights(inputs,
        mask=None)``: float32 ``(batch, steps)``.

    Example:

    >>> x = np.random.rand(2, 7, 16).astype("float32")
    >>> AttentionPooling(hidden_units=8)(x).shape
    TensorShape([2, 16])

    Reference:
        Seed 000 (keras_art design notes): row/column BiGRU outputs are collapsed
        by attention pooling before fusion.
    """

    def __init__(self, hidden_units=128, **kwargs):
        super().__init__(**kwargs)
        if hidden_units is not None and (
            not isinstance(hidden_units, int)
            or isinstance(hidden_units, bool)
            or hidden_units < 1
        ):
            raise ValueError(
                "`hidden_units` must be a positive integer or None. "
                f"Received: hidden_units={hidden_units}"
            )
        self.hidden_units = hidden_units
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "AttentionPooling expects inputs of shape (batch, steps, features). "
                f"Received: input_shape={input_shape}"
            )
        features = input_shape[-1]
        if self.hidden_units is None:
            self.score_hidden = None
            score_in = features
        else:
            self.score_hidden = keras.layers.Dense(
                self.hidden_units,
                activation="tanh",
                dtype=self.dtype_policy,
                name="score_hidden",
            )
            self.score_hidden.build((None, None, features))
            score_in = self.hidden_units
        self.score = keras.layers.Dense(1, dtype=self.dtype_policy, name="score")
        self.score.build((None, None, score_in))
        self.built = True

    def call(self, inputs, mask=None):
        weights = self.attention_weights(inputs, mask=mask)
        pooled = ops.sum(
            ops.expand_dims(weights, -1) * ops.cast(inputs, "float32"), axis=1
        )
        return ops.cast(pooled, self.compute_dtype)

    def attention_weights(self, inputs, mask=None):
        """The float32 ``(batch, steps)`` weights `call` pools ``inputs`` with.

        Each row sums to 1 (0 for an all-masked row); masked steps get 0.
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        hidden = inputs
        if self.score_hidden is not None:
            hidden = self.score_hidden(hidden)
        scores = ops.squeeze(ops.cast(self.score(hidden), "float32"), axis=-1)
        if mask is not None:
            mask = ops.cast(mask, "bool")
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        # Written out (not ops.softmax) because a single step is legitimate here
        # and ops.softmax warns on a size-1 axis.
        weights = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
        weights = weights / ops.sum(weights, axis=-1, keepdims=True)
        if mask is not None:
            # All-masked rows: softmax of equal -1e9 is uniform; zero them instead.
            weights = weights * ops.cast(mask, "float32")
        return weights

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_units": self.hidden_units})
        return config
