"""Captions in many wordings, generated from a person's attributes: the caption encoder's corpus.

``caption_for(labels, rng, split)`` picks a random subset of a person's attributes (partial
descriptions, as people write them), a phrase for each from ``PHRASES`` (synonyms and forms:
"glasses", "wearing spectacles", "bespectacled"; "red hair", "a redhead"...), shuffles their order and
fills one of the split's sentence frames. The ``train`` and ``heldout`` splits share the vocabulary
but not the frames, so held-out captions are sentences the encoder never saw; held-out attribute
combinations are kept apart by ``heldout_combination``.

Returns the caption and the description it states (attributes not mentioned are ``None``).
"""

from __future__ import annotations

import numpy as np

from model.describe.attributes import ATTRIBUTES

NOUNS = {
    "male": ("man", "guy", "gentleman", "male", "fellow", "bloke"),
    "female": ("woman", "lady", "female", "gal"),
    None: ("person", "someone", "speaker", "individual"),
}
PRONOUNS = {"male": "he", "female": "she", None: "they"}

# (attribute, value) -> phrases that follow "with" (noun phrases), and adjectives that go before the noun
WITH = {
    ("hair", "black"): ("black hair", "jet-black hair", "dark hair", "raven hair"),
    ("hair", "brown"): ("brown hair", "chestnut hair", "brunette hair", "light brown hair"),
    ("hair", "blond"): ("blond hair", "blonde hair", "fair hair", "golden hair"),
    ("hair", "red"): ("red hair", "ginger hair", "auburn hair", "copper hair"),
    ("hair", "grey"): ("grey hair", "gray hair", "silver hair", "greying hair"),
    ("skin", "light"): ("light skin", "fair skin", "pale skin", "a light complexion"),
    ("skin", "medium"): ("medium skin", "olive skin", "tan skin", "a medium complexion"),
    ("skin", "dark"): ("dark skin", "deep brown skin", "dark brown skin", "a dark complexion"),
    ("glasses", "yes"): ("glasses", "spectacles", "eyeglasses", "a pair of glasses"),
    ("glasses", "no"): ("no glasses",),
    ("facial_hair", "beard"): ("a beard", "a full beard", "a thick beard"),
    ("facial_hair", "moustache"): ("a moustache", "a mustache"),
    ("facial_hair", "stubble"): ("stubble", "a stubbly chin", "a few days' stubble"),
    ("facial_hair", "goatee"): ("a goatee", "a goatee beard"),
    ("facial_hair", "none"): ("no beard", "no facial hair"),
    ("hair_style", "long"): ("long hair",),
    ("hair_style", "short"): ("short hair", "cropped hair"),
    ("hair_style", "curly"): ("curly hair", "curls"),
    ("hair_style", "bob"): ("a bob", "a bob cut"),
    ("hair_style", "ponytail"): ("a ponytail", "hair in a ponytail"),
}
ADJECTIVE = {
    ("hair", "black"): ("dark-haired", "black-haired"),
    ("hair", "brown"): ("brown-haired", "brunette"),
    ("hair", "blond"): ("blond", "blonde", "fair-haired"),
    ("hair", "red"): ("red-haired", "ginger", "redheaded"),
    ("hair", "grey"): ("grey-haired", "gray-haired", "silver-haired"),
    ("skin", "light"): ("light-skinned", "fair-skinned", "pale"),
    ("skin", "medium"): ("olive-skinned", "tan", "medium-skinned"),
    ("skin", "dark"): ("dark-skinned", "brown-skinned"),
    ("glasses", "yes"): ("bespectacled",),
    ("facial_hair", "beard"): ("bearded",),
    ("facial_hair", "stubble"): ("unshaven", "stubbly"),
    ("facial_hair", "none"): ("clean-shaven", "beardless"),
    ("hair_style", "curly"): ("curly-haired",),
    ("hair_style", "long"): ("long-haired",),
    ("hair_style", "short"): ("short-haired",),
}
WEARING = {
    ("glasses", "yes"): ("glasses", "spectacles", "eyeglasses"),
    ("glasses", "no"): ("no glasses",),
}
WITHOUT = {("glasses", "no"): ("glasses", "spectacles"), ("facial_hair", "none"): ("a beard", "facial hair")}
SHIRT_NOUNS = ("shirt", "top", "t-shirt", "sweater", "blouse")

# sentence frames: {np} the noun phrase ("a red-haired woman"), {withs} the with-list, {wear} a wearing clause,
# {pro} the pronoun. Train and held-out frames are disjoint.
FRAMES = {
    "train": (
        "{np} is talking", "{np} with {withs} is talking", "{np} with {withs}", "{np} with {withs}, wearing {wear}",
        "a video of {np} with {withs}", "{np} with {withs} is speaking", "{np} wearing {wear} is talking",
        "{np}, {withs}", "{np} who has {withs}", "{np}. {pro} {has} {withs}.", "{np} talking, with {withs}",
        "{np} with {withs} talks to the camera", "close-up of {np} with {withs}", "{withs}",
        "{np} in {wear}", "{np}", "talking {np} with {withs}",
    ),
    "heldout": (
        "the speaker is {np} who has {withs}", "here is {np}: {withs}", "{np} speaks; {pro} {has} {withs}",
        "{np} with {withs} says hello", "picture {np} with {withs}, speaking to us", "{np} having {withs}",
        "it is {np} with {withs}", "{np} with {withs} and wearing {wear}", "a clip showing {np} with {withs}",
        "I want {np} with {withs}", "the speaker is {np}", "here is {np}, talking", "{np} dressed in {wear}",
    ),
}


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def heldout_combination(labels: dict) -> bool:
    """About a fifth of (gender, hair, skin, glasses) combinations never appear in training captions."""
    key = "|".join(str(labels.get(k)) for k in ("gender", "hair", "skin", "glasses"))
    return (sum(map(ord, key)) * 2654435761) % 97 < 20


def caption_for(labels: dict[str, str], rng: np.random.Generator, split: str = "train",
                keep: float = 0.5) -> tuple[str, dict[str, str | None]]:
    """One caption of a person with ``labels``, mentioning a random subset of them (each with chance
    ``keep``; gender more often), and the description it states."""
    names = [a.name for a in ATTRIBUTES]
    chosen = {n: labels[n] for n in names if labels.get(n) is not None and rng.random() < (0.8 if n == "gender" else keep)}
    if chosen.get("facial_hair") and chosen.get("gender") == "female":
        chosen.pop("facial_hair")
    if chosen.get("facial_hair") and labels.get("gender") == "female":
        chosen.pop("facial_hair")
    gender = chosen.get("gender")
    noun = _pick(rng, NOUNS[gender])
    adjectives, withs, wears, withouts = [], [], [], []
    for name in rng.permutation(list(chosen)):
        key = (str(name), chosen[name])
        if name == "gender":
            continue
        if name == "shirt":
            wears.append(_a(f"{chosen[name]} {_pick(rng, SHIRT_NOUNS)}"))
            continue
        r = rng.random()
        if key in WITHOUT and r > 0.75:
            withouts.append(_pick(rng, WITHOUT[key]))
        elif key in ADJECTIVE and r < 0.3 and len(adjectives) < 2:
            adjectives.append(_pick(rng, ADJECTIVE[key]))
        elif key in WEARING and r < 0.6:
            wears.append(_pick(rng, WEARING[key]))
        else:
            withs.append(_pick(rng, WITH[key]))
    def fitting():
        clothes = all(any(n in w for n in SHIRT_NOUNS) for w in wears)  # "dressed in" / "in" take clothes only
        return [f for f in FRAMES[split] if ("{withs}" in f) == bool(withs) and ("{wear}" in f) == bool(wears)
                and (clothes or not any(k in f for k in ("in {wear}", "dressed in")))]

    frames = fitting()
    if not frames or (wears and rng.random() < 0.3):  # "with glasses" is as good as "wearing glasses"
        withs, wears = withs + wears, []
        frames = fitting()
    frame = _pick(rng, frames)
    np_text = _a(" ".join(adjectives + [noun])) if noun != "someone" else noun
    if adjectives and noun == "someone":
        np_text = f"someone {' '.join(adjectives)}"
    text = frame.format(np=np_text, withs=_join(withs), wear=_join(wears), pro=PRONOUNS[gender], has="have" if gender is None else "has")
    if withouts:
        if withouts == ["glasses"] and rng.random() < 0.4:
            text = text.rstrip(".") + _pick(rng, (", not wearing glasses", " who is not wearing glasses", " who doesn't wear glasses"))
        else:
            text = text.rstrip(".") + " without " + _join(withouts, "or")
    text = ". ".join(part[:1].upper() + part[1:] for part in text.split(". "))
    # what the caption states: the chosen attributes, whatever the wording dropped is not said
    said = {n: chosen.get(n) for n in names}
    mentioned = " ".join([*adjectives, *withs, *wears, *("no " + w for w in withouts), noun])
    for n in names:
        if said[n] is not None and n != "gender" and not _mentions(mentioned, n, said[n]):
            said[n] = None
    return text, said


def _mentions(text: str, name: str, value: str) -> bool:
    key = (name, value)
    if name == "shirt":
        return f" {value} " in f" {text} "
    forms = [*WITH.get(key, ()), *ADJECTIVE.get(key, ()), *WEARING.get(key, ()), *("no " + w for w in WITHOUT.get(key, ()))]
    return any(f in text for f in forms)


def _join(items: list[str], last: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def _a(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def caption_corpus(people: list[dict[str, str]], count: int, seed: int, split: str) -> list[tuple[str, dict]]:
    """``count`` captions of people drawn at random from ``people`` (their labels). ``train`` skips the
    held-out combinations; ``heldout`` uses only them and the held-out frames."""
    rng = np.random.default_rng(seed)
    pool = [p for p in people if heldout_combination(p) == (split == "heldout")]
    if not pool:
        raise ValueError(f"no people for the {split} split")
    return [caption_for(pool[int(rng.integers(len(pool)))], rng, split) for _ in range(count)]


def random_people(count: int, seed: int) -> list[dict[str, str]]:
    """Labels of ``count`` people with every attribute drawn uniformly, within what the synthesizer
    draws (beards for men only; bobs, ponytails and long hair for women only): the caption encoder
    learns words, so it sees every value about equally often, unlike the drawn corpus."""
    rng = np.random.default_rng(seed)
    people = []
    for _ in range(count):
        person = {a.name: _pick(rng, a.values) for a in ATTRIBUTES}
        if person["gender"] == "female":  # the synthesizer's styles per gender (model/corpus/speakers.py)
            person["facial_hair"] = "none"
            person["hair_style"] = _pick(rng, ("long", "curly", "bob", "ponytail"))
        else:
            person["hair_style"] = _pick(rng, ("short", "curly"))
        people.append(person)
    return people
