"""The caption vocabulary: a fixed tuple of texts, index 0 the learned null caption ("no caption")."""

from __future__ import annotations

NULL_CAPTION = 0
DEFAULT_CAPTIONS = ("", "A man is talking", "A woman is talking")

# keyword -> caption text, for captions outside the fixed vocabulary (matched on whole words)
_CAPTION_KEYWORDS = {
    "man": "A man is talking",
    "male": "A man is talking",
    "boy": "A man is talking",
    "guy": "A man is talking",
    "woman": "A woman is talking",
    "female": "A woman is talking",
    "girl": "A woman is talking",
    "lady": "A woman is talking",
}


def caption_index(text: str, captions: tuple[str, ...] = DEFAULT_CAPTIONS) -> int:
    """Caption text -> index in the fixed vocabulary; 0 (the learned null caption) for empty text.

    An exact (case-insensitive) match wins; otherwise the text is mapped by keyword
    (man/male/... -> "A man is talking", woman/female/... -> "A woman is talking").
    Raises ValueError with a message the caller can show the user when neither works.
    """
    cleaned = " ".join(text.strip().lower().split())
    if not cleaned:
        return NULL_CAPTION
    lowered = [c.lower() for c in captions]
    if cleaned in lowered:
        return lowered.index(cleaned)
    words = {w.strip(".,;:!?\"'") for w in cleaned.split()}
    hits = {_CAPTION_KEYWORDS[w] for w in words if w in _CAPTION_KEYWORDS}
    hits = {h for h in hits if h.lower() in lowered}
    if len(hits) == 1:
        return lowered.index(hits.pop().lower())
    known = ", ".join(repr(c) for c in captions if c)
    if len(hits) > 1:
        raise ValueError(f"caption {text!r} is ambiguous; use one of {known}")
    raise ValueError(f"caption {text!r} is not understood; use one of {known} (or leave it empty)")
