"""Evaluation of a finished run: metrics, plots, label audit, Grad-CAM, report.

`evaluate` is the library function behind ``python -m keras_art.evaluate``.
"""

from keras_art.evaluation.evaluate_run import evaluate

__all__ = ["evaluate"]
