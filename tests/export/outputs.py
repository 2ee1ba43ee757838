"""The check both export tests make: named outputs equal the Keras model's."""

import numpy as np


def assert_outputs_match(got, expected, record, *, tasks, top_k: int, atol: float):
    """``got`` (an export's ``<task>_probabilities`` / ``_top_k_classes`` /
    ``_top_k_scores``) against ``expected`` (the Keras model's ``{task: probs}``)."""
    for task in tasks:
        probs = got[f"{task}_probabilities"]
        np.testing.assert_allclose(probs, expected[task], atol=atol)
        k = min(top_k, len(record.class_names[task]))
        # The classes named carry the k highest probabilities, in order (classes
        # of equal probability, e.g. two that underflowed to 0, in either order).
        index = {name: i for i, name in enumerate(record.class_names[task])}
        named = np.vectorize(index.get, otypes=[int])(
            got[f"{task}_top_k_classes"].astype(str)
        )
        highest = -np.sort(-probs, axis=1)[:, :k]
        np.testing.assert_array_equal(np.take_along_axis(probs, named, 1), highest)
        np.testing.assert_allclose(got[f"{task}_top_k_scores"], highest)
