"""The check both export tests make: named outputs equal the Keras model's."""

import numpy as np


def assert_outputs_match(got, expected, record, *, tasks, top_k: int, atol: float):
    """``got`` (an export's ``<task>_probabilities`` / ``_top_k_classes`` /
    ``_top_k_scores``) against ``expected`` (the Keras model's ``{task: probs}``)."""
    for task in tasks:
        probs = got[f"{task}_probabilities"]
        np.testing.assert_allclose(probs, expected[task], atol=atol)
        k = min(top_k, len(record.class_names[task]))
        order = np.argsort(-probs, axis=1)[:, :k]
        names = np.array(record.class_names[task])[order]
        assert got[f"{task}_top_k_classes"].astype(str).tolist() == names.tolist()
        np.testing.assert_allclose(
            got[f"{task}_top_k_scores"], np.take_along_axis(probs, order, 1)
        )
