"""Evaluation of a finished run: metrics, plots, label audit, Grad-CAM, report;
and the comparison of runs and groups of repeats.

`evaluate` is the library function behind ``python -m keras_art.evaluate``,
`compare` the one behind ``python -m keras_art.compare``.
"""

from keras_art.evaluation.compare_runs import compare
from keras_art.evaluation.evaluate_run import evaluate

__all__ = ["compare", "evaluate"]
