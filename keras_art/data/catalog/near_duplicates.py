"""Group the rows of a catalog that hold one painting: identical bytes or close hashes.

`group_near_duplicates` links two rows when their content keys (SHA-1 of the bytes)
are equal or when any perceptual hash of one (`perceptual_hash.image_hashes`) is
within ``max_distance`` bits of any hash of the other (`hamming.pairs_within`), and
gives every row the key of its group: the smallest content key in it. The split
(`splits.assign_splits`) draws per key, so a group always lands in one split.

Groups are connected components (scipy's ``connected_components`` on the graph of
rows, content keys and hashes): a chain of close pairs is one group, which is what
a painting stored at many sizes needs. Adding a file can merge groups and so move
the rows of the one whose key is no longer the smallest.

`near_duplicates_across` answers the question evaluation asks of a run split before
grouping existed: which of these images have a near-duplicate among those?
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_art.data.catalog.hamming import pairs_within
from keras_art.data.catalog.perceptual_hash import HASH_BITS, hash_values

HASH_NOTE = (
    f"imagehash pHash ({HASH_BITS} bits) of each image and of its content inside "
    "uniform borders; rows whose hashes differ in at most max_distance bits, or whose "
    "bytes are identical, are one group and share a split"
)
MAX_EXAMPLES = 10
EXAMPLE_FILES = 5


def group_near_duplicates(
    files: Sequence[str],
    keys: Sequence[str],
    hashes: Sequence[Sequence[str]],
    max_distance: int,
) -> tuple[np.ndarray, dict]:
    """Per row, the key of its group; and a JSON-safe report of the groups that are
    more than byte-identical copies (counts and the largest as examples).

    Args:
        files: one path per row (for the report's examples).
        keys: one content key per row (rows with equal keys are one group).
        hashes: per row, its perceptual hashes as hex (none: linked by key only).
        max_distance: the largest Hamming distance that links two hashes.
    """
    n = len(keys)
    if n == 0:
        return np.array([], dtype=object), {
            **_report([], *[np.zeros(0, int)] * 4),
            "max_distance": int(max_distance),
        }
    key_names, key_of_row = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
    owner = np.repeat(np.arange(n), [len(h) for h in hashes])
    flat = [h for row in hashes for h in row]
    values, value_of_item = np.unique(hash_values(flat), return_inverse=True)
    near_i, near_j, near_d = pairs_within(values, max_distance)
    # Nodes: rows, then content keys, then distinct hash values.
    first_value = n + len(key_names)
    edges = (
        (np.arange(n), n + key_of_row),
        (owner, first_value + value_of_item),
        (first_value + near_i, first_value + near_j),
    )
    component = _components(edges, first_value + len(values))
    row_component = component[:n]
    # A group's key: its smallest content key (np.unique sorted them).
    smallest = np.full(component.max() + 1, len(key_names), dtype=np.int64)
    np.minimum.at(smallest, row_component, key_of_row)
    group_keys = key_names[smallest[row_component]].astype(object)
    report = _report(
        files, key_of_row, row_component, component[first_value + near_i], near_d
    )
    report["max_distance"] = int(max_distance)
    return group_keys, report


def _components(edges, n_nodes: int) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.concatenate([e[0] for e in edges])
    b = np.concatenate([e[1] for e in edges])
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), (n_nodes, n_nodes))
    return connected_components(graph, directed=False)[1]


def _report(files, key_of_row, row_component, pair_component, pair_distance) -> dict:
    """Counts and examples of the groups holding more than one content key."""
    n_groups = row_component.max() + 1 if len(row_component) else 0
    sizes = np.bincount(row_component, minlength=n_groups)
    # Distinct content keys per group: byte-identical copies alone are no news.
    pairs = np.unique(np.stack([row_component, key_of_row]), axis=1)
    contents = np.bincount(pairs[0], minlength=n_groups)
    widest = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(widest, pair_component, pair_distance)
    near = np.flatnonzero(contents > 1)
    order = near[np.lexsort((near, -sizes[near]))]
    examples = []
    for g in order[:MAX_EXAMPLES]:
        members = sorted(str(files[r]) for r in np.flatnonzero(row_component == g))
        examples.append(
            {
                "images": int(sizes[g]),
                "max_distance": int(widest[g]),
                "files": members[:EXAMPLE_FILES],
            }
        )
    return {
        "hash": HASH_NOTE,
        "groups": len(near),
        "rows_in_groups": int(sizes[near].sum()),
        "largest_group": int(sizes[near].max()) if len(near) else 0,
        "examples": examples,
    }


def near_duplicates_across(
    hashes: Sequence[Sequence[str]],
    reference: Sequence[Sequence[str]],
    max_distance: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``hashes``: the smallest Hamming distance to a row of
    ``reference`` when at most ``max_distance`` (else -1), and that row (else -1)."""
    owner = np.repeat(np.arange(len(hashes)), [len(h) for h in hashes])
    ref_owner = np.repeat(np.arange(len(reference)), [len(h) for h in reference])
    flat = [h for row in hashes for h in row] + [h for row in reference for h in row]
    i, j, d = pairs_within(hash_values(flat), max_distance)
    # pairs_within gives i < j: an item of `hashes` always comes first.
    across = (i < len(owner)) & (j >= len(owner))
    rows, refs = owner[i[across]], ref_owner[j[across] - len(owner)]
    d = d[across]
    order = np.lexsort((refs, d, rows))  # per row, the closest (then first) match
    first = order[np.flatnonzero(np.diff(rows[order], prepend=-1))]
    distance = np.full(len(hashes), -1, dtype=np.int64)
    match = np.full(len(hashes), -1, dtype=np.int64)
    distance[rows[first]], match[rows[first]] = d[first], refs[first]
    return distance, match
