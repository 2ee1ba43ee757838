"""Walk the layers nested inside a layer or model (public ``.layers`` only)."""

from __future__ import annotations

from collections.abc import Iterator

import keras


def all_sublayers(
    layer: keras.layers.Layer, include_self: bool = False
) -> Iterator[keras.layers.Layer]:
    """Every layer nested in ``layer`` (depth first), ``layer`` first if asked."""
    if include_self:
        yield layer
    for sub in getattr(layer, "layers", None) or []:
        yield sub
        yield from all_sublayers(sub)
