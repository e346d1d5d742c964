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


def caption_condition(caption, captions: tuple[str, ...], describes: bool, device=None):
    """What one request's caption is to a network: a long ``[1]`` index (0 = the null caption) for a
    caption-index network, a float ``[1, SLOTS]`` description vector for a description network
    (``UNetConfig.attribute_slots``).

    ``caption``: None or 0 (no caption), an index into ``captions`` (the paper's captions), or a
    description ``{attribute: value}`` (``model.describe.attributes``; what a free-form caption said).
    A description given to a caption-index network keeps only its gender (the null caption without
    one); an index given to a description network is its caption's gender."""
    import torch

    from model.describe.attributes import ATTRIBUTES, vector
    from model.describe.conditioning import gender_captions

    texts = gender_captions()  # "", man, woman: the gender block's slots
    genders = [None, *ATTRIBUTES[0].values]
    if caption is None:
        caption = NULL_CAPTION
    if isinstance(caption, int):
        if not 0 <= caption < len(captions):
            raise ValueError(f"caption index {caption} is outside the model's {len(captions)} captions")
        if not describes:
            return torch.tensor([caption], dtype=torch.long, device=device)
        lowered = [t.lower() for t in texts]
        if captions[caption].lower() not in lowered:
            raise ValueError(f"caption {captions[caption]!r} names no gender a description can say")
        gender = genders[lowered.index(captions[caption].lower())]
        description = {} if gender is None else {"gender": gender}
    else:
        description = {k: v for k, v in dict(caption).items() if v is not None}
    if describes:
        return torch.from_numpy(vector(description)).to(device).reshape(1, -1)
    # the gender's caption in the vocabulary ("" -> the null caption when none is said)
    index = caption_index(texts[genders.index(description.get("gender"))], captions)
    return torch.tensor([index], dtype=torch.long, device=device)


def null_condition_like(caption):
    """The null caption shaped like ``caption``: index 0, or the vector with nothing said."""
    import torch

    if caption.is_floating_point():
        from model.describe.conditioning import null_descriptions

        return null_descriptions(caption)
    return torch.full_like(caption, NULL_CAPTION)


def is_null_condition(caption) -> bool:
    """Whether a one-request condition (``caption_condition``'s) says nothing."""
    import torch

    return bool(torch.equal(caption, null_condition_like(caption)))
