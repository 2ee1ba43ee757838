import numpy as np
import pytest
import tensorflow as tf

from keras_art.data.pipeline.decode import decode_and_resize_for_eval, decode_rgb
from keras_art.errors import UserError
from tests.data.image_fixtures import IMAGE_FORMATS, encode, textured


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_decode_gives_three_channel_uint8(fmt):
    image = decode_rgb(tf.constant(encode(textured(10, 14), fmt)))
    assert image.dtype == tf.uint8 and image.shape == (10, 14, 3)


@pytest.mark.parametrize("mode", ["resize", "center_crop", "letterbox"])
def test_eval_resize_modes_eager_and_in_map_fn(mode):
    blobs = tf.constant(
        [encode(textured(24, 40, i), f) for i, f in enumerate(IMAGE_FORMATS)]
    )

    @tf.function(autograph=False)  # what export's serving signature does
    def serve(batch):
        return tf.map_fn(
            lambda b: decode_and_resize_for_eval(b, 16, mode),
            batch,
            fn_output_signature=tf.float32,
        )

    batched = serve(blobs).numpy()
    assert batched.shape == (len(IMAGE_FORMATS), 16, 16, 3)
    assert batched.min() >= 0 and batched.max() <= 255
    eager = decode_and_resize_for_eval(blobs[0], 16, mode).numpy()
    np.testing.assert_allclose(eager, batched[0], atol=1e-3)


def test_letterbox_pads_and_keeps_aspect():
    white = np.full((10, 40, 3), 255, np.uint8)
    out = decode_and_resize_for_eval(
        tf.constant(encode(white, "png_rgba")), 16, "letterbox"
    ).numpy()
    assert out[0].max() == 0 and out[-1].max() == 0  # black bars top and bottom
    assert out[8, :, :].min() > 250  # picture in the middle, full width


def test_center_crop_jpeg_matches_decoded_crop():
    array = textured(30, 60)
    jpeg = decode_and_resize_for_eval(
        tf.constant(encode(array, "jpeg")), 16, "center_crop"
    ).numpy()
    png = decode_and_resize_for_eval(
        tf.constant(encode(array, "bmp")), 16, "center_crop"
    ).numpy()
    assert np.abs(jpeg - png).mean() < 6  # same square, JPEG loss only


def test_bad_mode_is_user_error():
    with pytest.raises(UserError, match="stretch"):
        decode_and_resize_for_eval(tf.constant(b""), 16, "stretch")
