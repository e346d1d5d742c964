"""What a caption can say about a person, and the conditioning vector that carries it.

The synthetic corpus draws every person from a known ``Appearance`` (``model/corpus/speakers.py``),
so each still and each speaker has labels for far more than gender. ``ATTRIBUTES`` names them, each
with its values; a *description* gives each attribute one value or leaves it unspecified (None).
The conditioning vector the portrait model reads is one block per attribute, ``1 + len(values)``
slots each, slot 0 meaning "not said": one-hot from a description, or the caption encoder's
probabilities. A vector with every block at slot 0 is the null caption (classifier-free guidance's
unconditional branch, and a call with no caption).

numpy only (the receiver's stub and the sender never pull torch through here).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class Attribute:
    name: str
    values: tuple[str, ...]
    judged: bool = True  # the attribute judge has a head for it

    @property
    def slots(self) -> int:
        return 1 + len(self.values)


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("gender", ("male", "female")),
    Attribute("hair", ("black", "brown", "blond", "red", "grey")),
    Attribute("skin", ("light", "medium", "dark")),
    Attribute("glasses", ("yes", "no")),
    Attribute("facial_hair", ("none", "beard", "moustache", "stubble", "goatee")),
    Attribute("hair_style", ("long", "short", "curly", "bob", "ponytail")),
    Attribute("shirt", ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")),
)
BY_NAME = {a.name: a for a in ATTRIBUTES}
SLOTS = sum(a.slots for a in ATTRIBUTES)
# the attributes the adherence bars cover (the others are judged and reported too)
BAR_ATTRIBUTES = ("gender", "hair", "skin", "glasses")

# the synthesizer's palettes (model/corpus/speakers.py), BGR, named as a person would name them
_HAIR_NAMES = {
    (20, 20, 25): "black", (30, 35, 45): "black", (45, 45, 60): "black",
    (25, 45, 80): "brown", (40, 70, 120): "brown", (60, 110, 170): "brown",
    (90, 150, 200): "blond", (130, 160, 190): "blond",
    (150, 150, 150): "grey", (20, 30, 110): "red",
}
_STYLE_NAMES = {"long": "long", "long_fringe": "long", "bob": "bob", "ponytail": "ponytail", "curly": "curly",
                "curly_short": "curly", "short": "short", "crew": "short", "side": "short", "receding": "short"}


def skin_name(bgr) -> str:
    """The synthesizer's 12 skin tones, light to deep, in three named thirds (by luma)."""
    b, g, r = bgr
    luma = 0.114 * b + 0.587 * g + 0.299 * r
    return "light" if luma >= 175 else "medium" if luma >= 125 else "dark"


def colour_name(bgr) -> str:
    """A colour's everyday name (for shirts): black, white, grey or a hue name; brown for dark warm hues."""
    b, g, r = (c / 255.0 for c in bgr)
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    hue = h * 360
    if v < 0.25:
        return "black"
    if s < 0.2:
        return "white" if v > 0.75 else "grey"
    if hue < 15 or hue >= 345:
        return "brown" if v < 0.5 else "red"
    if hue < 40:
        return "brown" if v < 0.6 else "orange"
    if hue < 70:
        return "brown" if v < 0.45 else "yellow"
    if hue < 170:
        return "green"
    if hue < 255:
        return "blue"
    if hue < 290:
        return "purple"
    return "pink"


def labels_of(look: Mapping, gender: str) -> dict[str, str]:
    """Every attribute's value for one drawn person (``Appearance`` as a dict, e.g. from speakers.json)."""
    hair = tuple(look["hair"])
    return {
        "gender": gender,
        "hair": _HAIR_NAMES.get(hair) or _nearest_hair(hair),
        "skin": skin_name(look["skin"]),
        "glasses": "yes" if look["glasses"] else "no",
        "facial_hair": "none" if look["facial_hair"] == "none" or gender == "female" else look["facial_hair"],
        "hair_style": _STYLE_NAMES.get(look["hair_style"], "short"),
        "shirt": colour_name(look["shirt"]),
    }


def _nearest_hair(bgr) -> str:
    known = np.array(list(_HAIR_NAMES), float)
    return list(_HAIR_NAMES.values())[int(np.abs(known - np.array(bgr, float)).sum(1).argmin())]


def vector(description: Mapping[str, str | None]) -> np.ndarray:
    """A description -> its one-hot conditioning vector ``float32 [SLOTS]`` (unknown names raise)."""
    unknown = set(description) - set(BY_NAME)
    if unknown:
        raise ValueError(f"unknown attributes {sorted(unknown)}; known: {', '.join(BY_NAME)}")
    out = np.zeros(SLOTS, np.float32)
    at = 0
    for attr in ATTRIBUTES:
        value = description.get(attr.name)
        if value is not None and value not in attr.values:
            raise ValueError(f"{attr.name} is one of {', '.join(attr.values)}, not {value!r}")
        out[at + (0 if value is None else 1 + attr.values.index(value))] = 1.0
        at += attr.slots
    return out


def null_vector() -> np.ndarray:
    return vector({})


def blocks(vec: np.ndarray):
    """``(attribute, the block of vec)`` pairs, in order (vec ``[..., SLOTS]``)."""
    at = 0
    for attr in ATTRIBUTES:
        yield attr, vec[..., at:at + attr.slots]
        at += attr.slots


def description_of(vec: np.ndarray) -> dict[str, str | None]:
    """A vector (one-hot or probabilities, ``[SLOTS]``) -> its description (argmax per block; slot 0 = None)."""
    out: dict[str, str | None] = {}
    for attr, block in blocks(np.asarray(vec)):
        k = int(np.argmax(block))
        out[attr.name] = None if k == 0 else attr.values[k - 1]
    return out


def said(description: Mapping[str, str | None]) -> dict[str, str]:
    """Only the attributes a description gives a value."""
    return {k: v for k, v in description.items() if v is not None}


def text_of(description: Mapping[str, str | None]) -> str:
    """A plain English rendering of a description (for logs, sheets and the face's json)."""
    d = said(description)
    if not d:
        return "anyone"
    noun = {"male": "a man", "female": "a woman"}.get(d.get("gender", ""), "a person")
    parts = []
    if "skin" in d:
        parts.append(f"{d['skin']} skin")
    hair = " ".join(x for x in (d.get("hair_style", "") if d.get("hair_style") not in ("bob", "ponytail") else "",
                                d.get("hair", "")) if x)
    if hair:
        parts.append(f"{hair} hair")
    if d.get("hair_style") in ("bob", "ponytail"):
        parts.append(f"a {d['hair_style']}")
    if d.get("glasses") == "yes":
        parts.append("glasses")
    if d.get("facial_hair") not in (None, "none"):
        parts.append(f"a {d['facial_hair']}")
    if d.get("shirt"):
        parts.append(f"a {d['shirt']} shirt")
    text = noun + (" with " + ", ".join(parts) if parts else "")
    if d.get("glasses") == "no":
        text += ", no glasses"
    if d.get("facial_hair") == "none":
        text += ", clean-shaven"
    return text


def corpus_people(corpus) -> dict[str, dict]:
    """Speaker id -> labels for a video corpus made by ``textcall corpus synth`` in ``corpus``; ``{}`` for
    any other corpus (GRID's real talkers have no labels beyond gender)."""
    import json
    from pathlib import Path

    from model.corpus.speakers import default_speaker_ids, make_speakers

    root = Path(corpus)
    try:
        meta = json.loads((root / "corpus.json").read_text())
    except (OSError, ValueError):
        return {}
    if meta.get("generator") != "textcall corpus synth":
        return {}
    ids = {p.name for p in root.iterdir() if p.is_dir() and p.name[:1] == "s" and p.name[1:].isdigit()}
    n = int(meta.get("speakers", len(ids)))
    for n_female in range(n + 1):  # the split of the speakers into genders that names these folders
        if {sid for sid, _ in default_speaker_ids(n_female, n - n_female)} == ids:
            return {s.id: labels_of(s.to_json()["look"], s.gender) for s in make_speakers(n_female, n - n_female, int(meta["seed"]))}
    return {}
