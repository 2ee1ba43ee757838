"""An interactive demo: a local web app (Gradio, the ``demo`` extra) that classifies
dropped paintings with any model `keras_art.inference` loads.

    python -m keras_art.demo --model runs/RUN        # or a SavedModel, a .tflite,
    python -m keras_art.demo --model models/          # or a folder of them

- `keras_art.demo.discovery`: the models a path holds, loaded on first use.
- `keras_art.demo.paintings`: per painting, the top k per task, the Grad-CAM
  overlay and the cnn_rnn head's row/column attention (no Gradio).
- `keras_art.demo.app`: the page (`build_app`) and its server (`launch_demo`).

Nothing is imported here, so ``python -m keras_art.demo`` says how to install the
extra before TensorFlow or Gradio load.
"""
