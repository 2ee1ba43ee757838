"""Match a trained model's classes to another collection's classes by name.

"Albrecht_Dürer" (NFC), "Albrecht_Du\u0308rer" (NFD, as macOS writes folder names),
"albrecht-durer" and "ALBRECHT DURER" are one class.
"""

from __future__ import annotations

from collections.abc import Sequence

from keras_art.data.catalog.class_names import normalise_class_name


def match_classes(model_classes: Sequence[str], data_classes: Sequence[str]) -> dict:
    """Which of ``data_classes`` the model knows, by normalised name.

    Returns ``{"mapping": {data_index: model_index}, "matched": [(data_name,
    model_name)], "unmatched_data": [...], "unmatched_model": [...]}``, each list in
    the order of its input. Several data classes may map to one model class (a
    collection holding "Albrecht_Dürer" and "Albrecht_Durer" folders).

    Raises:
        ValueError: two model classes share a normalised name, so a data class
            could not be assigned to one of them.
    """
    by_key: dict[str, int] = {}
    for i, name in enumerate(model_classes):
        key = normalise_class_name(name)
        if key in by_key:
            raise ValueError(
                "Two model classes have the same normalised name "
                f"{key!r}: {model_classes[by_key[key]]!r} and {name!r}."
            )
        by_key[key] = i
    mapping: dict[int, int] = {}
    matched: list[tuple[str, str]] = []
    unmatched_data: list[str] = []
    for j, name in enumerate(data_classes):
        key = normalise_class_name(name)
        # A name with no letters or digits left ("", "___") matches nothing.
        i = by_key.get(key) if key else None
        if i is None:
            unmatched_data.append(name)
        else:
            mapping[j] = i
            matched.append((name, model_classes[i]))
    used = set(mapping.values())
    return {
        "mapping": mapping,
        "matched": matched,
        "unmatched_data": unmatched_data,
        "unmatched_model": [n for i, n in enumerate(model_classes) if i not in used],
    }
