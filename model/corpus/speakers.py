"""Who speaks: GRID's real speaker -> gender table and the synthetic speakers' looks and voices.

GRID's talkers are ``s1`` .. ``s34`` (no video was released for ``s21``); 18 are male and 16
female (Cooke et al. 2006). The per-talker table below follows the GRID web site's talker list
(spandh.dcs.shef.ac.uk/gridcorpus). It could not be re-checked against that page from this
machine (no internet); it agrees with every fact found here: 18 male / 16 female, and the splits
papers describe (LipNet's unseen speakers s1, s2 male and s20, s22 female; s4 and s29 female in
the lip-to-speech literature). Anyone holding the corpus can override it with a JSON or
``speaker gender`` text file (``textcall corpus prepare --genders FILE``).

The synthetic corpus reuses GRID's ids and genders, so one table captions both corpora.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FEMALE, MALE = "female", "male"
CAPTIONS = {MALE: "A man is talking", FEMALE: "A woman is talking"}

_GRID_FEMALE = (4, 7, 11, 15, 16, 18, 20, 21, 22, 23, 24, 25, 29, 31, 33, 34)
_GRID_MALE = (1, 2, 3, 5, 6, 8, 9, 10, 12, 13, 14, 17, 19, 26, 27, 28, 30, 32)
GRID_GENDERS: dict[str, str] = {
    **{f"s{i}": FEMALE for i in _GRID_FEMALE},
    **{f"s{i}": MALE for i in _GRID_MALE},
}
assert len(GRID_GENDERS) == 34 and sum(g == FEMALE for g in GRID_GENDERS.values()) == 16

# espeak-ng voices: English accents and voice variants per gender
_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc")
_VARIANTS = {FEMALE: ("f1", "f2", "f3", "f4", "f5"), MALE: ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")}

# BGR skin tones from light to deep
_SKIN = (
    (189, 214, 241), (170, 200, 236), (160, 190, 225), (140, 180, 224), (120, 165, 214), (105, 150, 198),
    (95, 135, 185), (80, 120, 170), (72, 108, 152), (64, 95, 136), (58, 86, 124), (52, 78, 114),
)
_HAIR = (  # BGR
    (20, 20, 25), (30, 35, 45), (25, 45, 80), (40, 70, 120), (60, 110, 170), (90, 150, 200),
    (130, 160, 190), (150, 150, 150), (20, 30, 110), (45, 45, 60),
)
_EYES = ((90, 60, 30), (120, 90, 40), (60, 90, 50), (30, 50, 80), (25, 35, 55), (110, 110, 90))
_HAIR_STYLES = {FEMALE: ("long", "bob", "ponytail", "long_fringe", "curly"), MALE: ("short", "crew", "side", "receding", "curly_short")}
_FACIAL_HAIR = ("none", "none", "stubble", "beard", "moustache", "goatee")


@dataclass(frozen=True)
class Appearance:
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: str
    eyes: tuple[int, int, int]
    lips: tuple[int, int, int]
    shirt: tuple[int, int, int]
    collar: tuple[int, int, int]
    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    face_width: float  # half-width in pixels at 360x288
    face_height: float  # half-height
    jaw: float  # 0 = round chin, 1 = square jaw
    eye_spacing: float
    eye_size: float
    brow_thickness: float
    brow_arch: float
    nose_length: float
    mouth_width: float  # half-width of the closed mouth
    facial_hair: str
    glasses: bool
    earrings: bool


@dataclass(frozen=True)
class Speaker:
    id: str  # "s4"
    gender: str
    voice: str  # espeak-ng voice name with variant
    pitch: int  # 0..100
    pitch_range: int
    rate: int  # words per minute
    look: Appearance

    @property
    def caption(self) -> str:
        return CAPTIONS[self.gender]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Speaker:
        look = dict(data["look"])
        for key in ("skin", "hair", "eyes", "lips", "shirt", "collar"):
            look[key] = tuple(look[key])
        look["background"] = tuple(tuple(c) for c in look["background"])
        return cls(**{**data, "look": Appearance(**look)})


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _colour(rng: np.random.Generator, lo: int = 30, hi: int = 230) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))


def make_speaker(speaker_id: str, gender: str, index: int, seed: int) -> Speaker:
    """A deterministic synthetic person for ``(speaker_id, seed)``; ``index`` spreads skin tones."""
    if gender not in CAPTIONS:
        raise ValueError(f"gender must be {FEMALE!r} or {MALE!r}, got {gender!r}")
    rng = np.random.default_rng([seed, int(speaker_id.lstrip("s") or 0), 7])
    female = gender == FEMALE
    skin = _SKIN[(index * 5 + int(rng.integers(2))) % len(_SKIN)]
    lips = (
        tuple(int(v) for v in np.clip(np.array(_pick(rng, ((70, 60, 190), (90, 70, 170), (80, 50, 150), (110, 90, 200)))), 0, 255))
        if female
        else tuple(int(v * 0.78) for v in (skin[0] * 0.8, skin[1] * 0.75, min(255, skin[2] * 1.0)))
    )
    bg_a = _colour(rng, 60, 220)
    bg_b = tuple(int(v * 0.55) for v in bg_a)
    look = Appearance(
        skin=skin,
        hair=_pick(rng, _HAIR[:9] if female else _HAIR),
        hair_style=_pick(rng, _HAIR_STYLES[gender]),
        eyes=_pick(rng, _EYES),
        lips=lips,
        shirt=_colour(rng, 20, 220),
        collar=_colour(rng, 20, 240),
        background=(bg_a, bg_b),
        face_width=float(rng.uniform(50, 56) if female else rng.uniform(56, 64)),
        face_height=float(rng.uniform(70, 76) if female else rng.uniform(74, 82)),
        jaw=float(rng.uniform(0.0, 0.3) if female else rng.uniform(0.55, 1.0)),
        eye_spacing=float(rng.uniform(21, 25)),
        eye_size=float(rng.uniform(8.5, 10.5) if female else rng.uniform(7.5, 9.0)),
        brow_thickness=float(rng.uniform(2.0, 3.0) if female else rng.uniform(4.0, 6.0)),
        brow_arch=float(rng.uniform(4, 7) if female else rng.uniform(0, 2.5)),
        nose_length=float(rng.uniform(18, 23) if female else rng.uniform(22, 28)),
        mouth_width=float(rng.uniform(17, 20) if female else rng.uniform(18, 22)),
        facial_hair="none" if female else _pick(rng, _FACIAL_HAIR),
        glasses=bool(rng.random() < 0.2),
        earrings=bool(female and rng.random() < 0.6),
    )
    accent = _ACCENTS[index % len(_ACCENTS)]
    variant = _VARIANTS[gender][index % len(_VARIANTS[gender])]
    return Speaker(
        id=speaker_id,
        gender=gender,
        voice=f"{accent}+{variant}",
        pitch=int(rng.integers(55, 85) if female else rng.integers(20, 45)),
        pitch_range=int(rng.integers(40, 80)),
        rate=int(rng.integers(150, 185)),
        look=look,
    )


def default_speaker_ids(n_female: int, n_male: int) -> list[tuple[str, str]]:
    """The first ``n_female`` female and ``n_male`` male GRID ids (skipping s21, which has no video)."""
    females = [f"s{i}" for i in _GRID_FEMALE if i != 21]
    males = [f"s{i}" for i in _GRID_MALE]
    if n_female > len(females) or n_male > len(males):
        extra = [f"s{i}" for i in range(35, 35 + max(n_female, n_male) * 2)]
        females += extra[0::2]
        males += extra[1::2]
    chosen = [(s, FEMALE) for s in females[:n_female]] + [(s, MALE) for s in males[:n_male]]
    return sorted(chosen, key=lambda pair: int(pair[0][1:]))


def make_speakers(n_female: int = 12, n_male: int = 12, seed: int = 0) -> list[Speaker]:
    return [make_speaker(sid, gender, index, seed) for index, (sid, gender) in enumerate(default_speaker_ids(n_female, n_male))]


def load_gender_table(path: str | Path) -> dict[str, str]:
    """A speaker -> gender table from JSON (``{"s1": "male"}``, or a ``speakers.json`` list) or text lines."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    table: dict[str, str] = {}
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, dict) and "speakers" in data:
            data = data["speakers"]
        if isinstance(data, list):
            table = {d["id"]: d["gender"] for d in data}
        else:
            table = dict(data)
    else:
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                speaker, gender = line.replace(",", " ").split()[:2]
                table[speaker] = gender
    aliases = {"m": MALE, "f": FEMALE, "man": MALE, "woman": FEMALE}
    table = {k: aliases.get(v.lower(), v.lower()) for k, v in table.items()}
    bad = {k: v for k, v in table.items() if v not in CAPTIONS}
    if bad:
        raise ValueError(f"{path}: genders must be male/female, got {bad}")
    return table
