"""A plain ``import tensorflow`` before or after napari draws with OpenGL (argv[1]).

Run by tests/test_unet_device.py in a fresh interpreter on a real (virtual) display, as
another TensorFlow plugin or a user's script would do it. Prints "ok" at the end; a
crash shows as a negative exit status (SIGSEGV, SIGABRT).
"""

import sys

import numpy as np


def use_tensorflow() -> None:
    import tensorflow as tf

    image = tf.random.normal((1, 32, 32, 1))
    kernel = tf.random.normal((3, 3, 1, 2))
    assert tf.nn.conv2d(image, kernel, 1, "SAME").shape == (1, 32, 32, 2)


if sys.argv[1] == "tensorflow-first":
    use_tensorflow()

import napari  # noqa: E402

viewer = napari.Viewer(show=True)
viewer.add_image(np.random.default_rng(0).random((64, 64)))
assert viewer.screenshot(canvas_only=True).size  # OpenGL has drawn
if sys.argv[1] == "napari-first":
    use_tensorflow()
    viewer.add_image(np.zeros((16, 16)))
    viewer.screenshot(canvas_only=True)
viewer.close()
print("ok", flush=True)
