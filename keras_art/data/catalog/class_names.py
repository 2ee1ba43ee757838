"""The one rule for comparing class names across spellings and collections.

"Albrecht_Dürer" (NFC), "Albrecht_Du\u0308rer" (NFD, as macOS writes folder names),
"albrecht-durer" and "ALBRECHT DURER" are one name: subsets (``data.classes``) and
cross-collection evaluation both match through `normalise_class_name`.
"""

from __future__ import annotations

import re
import unicodedata

# Letters that carry no combining mark in Unicode, so NFKD cannot fold them.
_FOLD = str.maketrans(
    {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i"}
)
# Apostrophes vanish rather than split ("O'Keeffe" = "OKeeffe" = "okeeffe").
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_SEPARATORS = re.compile(r"[\W_]+")


def normalise_class_name(name: str) -> str:
    """The matching key of a class name: accents folded, case folded, separators.

    NFC, then NFKD with combining marks dropped, casefold, and every run of ``_``,
    ``-``, spaces or other punctuation turned into one space, stripped.
    """
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFC", str(name)))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.casefold().translate(_FOLD)
    text = _APOSTROPHES.sub("", text)
    return _SEPARATORS.sub(" ", text).strip()
