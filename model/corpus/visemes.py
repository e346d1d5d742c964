"""From espeak-ng phonemes to mouth shapes: visemes and coarticulation.

Each phoneme maps to a viseme with a target mouth opening (0 closed .. 1 wide open), a width
(0 rounded .. 1 spread, 0.5 at rest) and a dominance: how strongly it holds its shape against its
neighbours (lips must close for /p b m/, while /t d n/ borrow the shape of the vowels around them).
The track blends the targets with Cohen & Massaro's dominance functions (1993): at time t,
shape(t) = sum_i D_i(t) T_i / sum_i D_i(t), with D_i a Gaussian bump over phoneme i scaled by its
dominance. The blend is symmetric in time (anticipation and carry-over alike), so the mouth neither
leads nor lags the sound by much (a 40 ms anticipation offsets the early loudness of syllables,
measured with ``textcall corpus check``); per-frame values are means over each frame's interval, the
same interval the audio envelope of that frame covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Viseme:
    name: str
    opening: float
    width: float
    dominance: float


_REST = Viseme("rest", 0.0, 0.5, 0.5)
VISEMES: dict[str, Viseme] = {
    "_": _REST,
    # bilabials close the lips; labiodentals tuck the lower lip
    "p": Viseme("PBM", 0.0, 0.5, 1.0), "b": Viseme("PBM", 0.0, 0.5, 1.0), "m": Viseme("PBM", 0.0, 0.5, 1.0),
    "f": Viseme("FV", 0.08, 0.5, 0.9), "v": Viseme("FV", 0.08, 0.5, 0.9),
    "T": Viseme("TH", 0.22, 0.55, 0.5), "D": Viseme("TH", 0.22, 0.55, 0.5),
    "t": Viseme("TDN", 0.2, 0.55, 0.25), "d": Viseme("TDN", 0.2, 0.55, 0.25), "n": Viseme("TDN", 0.18, 0.55, 0.25),
    "l": Viseme("L", 0.28, 0.55, 0.25), "s": Viseme("SZ", 0.12, 0.62, 0.45), "z": Viseme("SZ", 0.12, 0.62, 0.45),
    "S": Viseme("SH", 0.18, 0.3, 0.6), "Z": Viseme("SH", 0.18, 0.3, 0.6), "tS": Viseme("SH", 0.18, 0.3, 0.6),
    "dZ": Viseme("SH", 0.18, 0.3, 0.6), "k": Viseme("KG", 0.25, 0.5, 0.2), "g": Viseme("KG", 0.25, 0.5, 0.2),
    "N": Viseme("KG", 0.2, 0.5, 0.2), "h": Viseme("H", 0.35, 0.5, 0.15), "r": Viseme("R", 0.2, 0.32, 0.45),
    "w": Viseme("W", 0.1, 0.15, 0.8), "j": Viseme("Y", 0.18, 0.7, 0.3),
    # vowels
    "a": Viseme("AA", 0.9, 0.6, 0.55), "A": Viseme("AA", 1.0, 0.5, 0.55), "aI": Viseme("AA", 0.9, 0.62, 0.55),
    "aU": Viseme("AA", 0.85, 0.45, 0.55), "V": Viseme("AH", 0.7, 0.5, 0.5), "@": Viseme("AH", 0.42, 0.5, 0.4),
    "3": Viseme("ER", 0.4, 0.4, 0.45), "E": Viseme("EH", 0.65, 0.68, 0.5), "e": Viseme("EH", 0.55, 0.7, 0.5),
    "eI": Viseme("EH", 0.55, 0.72, 0.5), "I": Viseme("IH", 0.38, 0.78, 0.5), "i": Viseme("IY", 0.3, 0.85, 0.55),
    "0": Viseme("AO", 0.75, 0.3, 0.55), "O": Viseme("AO", 0.7, 0.28, 0.55), "OI": Viseme("AO", 0.7, 0.3, 0.55),
    "o": Viseme("OW", 0.55, 0.25, 0.6), "oU": Viseme("OW", 0.55, 0.25, 0.6), "U": Viseme("UW", 0.3, 0.18, 0.65),
    "u": Viseme("UW", 0.28, 0.12, 0.7),
}
NAMES = tuple(sorted({v.name for v in VISEMES.values()} | {"other"}))


def viseme_of(phoneme: str) -> Viseme:
    """The viseme of an espeak-ng phoneme mnemonic (stress marks and length marks ignored)."""
    p = phoneme.strip().lstrip("',%=").rstrip(":#;")
    if not p or p.startswith("_"):
        return _REST
    for key in (p, p[:2], p[:1]):
        if key in VISEMES:
            return VISEMES[key]
    lower = p[:1].lower()
    return VISEMES.get(lower, Viseme("other", 0.3, 0.5, 0.2))


@dataclass(frozen=True)
class MouthTrack:
    opening: np.ndarray  # float32 [F]
    width: np.ndarray  # float32 [F]
    viseme: np.ndarray  # int16 [F], index into NAMES of the phoneme sounding at the frame's centre


ANTICIPATION = 0.04  # seconds the lips move ahead of the sound they shape


def mouth_track(
    phonemes: list[tuple[str, float, float]], n_frames: int, fps: float, resolution: float = 0.002,
    anticipation: float = ANTICIPATION,
) -> MouthTrack:
    """Per-frame mouth shape for ``phonemes`` given as ``(label, start_s, end_s)`` on the clip's clock.

    The lips reach for a shape slightly before its sound (``anticipation`` seconds); without it the
    loud vowel onsets come first and the mouth trails the envelope by about 40 ms.
    """
    duration = n_frames / fps
    t = (np.arange(int(np.ceil(duration / resolution))) + 0.5) * resolution  # [T]
    # rest before the first and after the last phoneme
    items = [("_", -1.0, min((s for _, s, _ in phonemes), default=duration))]
    items += [(lbl, s, e) for lbl, s, e in phonemes if e > s]
    items.append(("_", max((e for _, _, e in phonemes), default=0.0), duration + 1.0))
    num_open = np.zeros_like(t)
    num_width = np.zeros_like(t)
    den = np.full_like(t, 1e-9)
    for label, start, end in items:
        v = viseme_of(label)
        centre, half = (start + end) / 2 - anticipation, (end - start) / 2
        tau = 0.3 * half + 0.03
        d = v.dominance * np.exp(-0.5 * (np.maximum(np.abs(t - centre) - half * 0.8, 0.0) / tau) ** 2)
        num_open += d * v.opening
        num_width += d * v.width
        den += d
    opening = num_open / den
    width = num_width / den
    frame_of = np.minimum((t * fps).astype(np.int64), n_frames - 1)
    counts = np.bincount(frame_of, minlength=n_frames)
    per_frame_open = np.bincount(frame_of, opening, minlength=n_frames) / np.maximum(counts, 1)
    per_frame_width = np.bincount(frame_of, width, minlength=n_frames) / np.maximum(counts, 1)
    centres = (np.arange(n_frames) + 0.5) / fps
    vis = np.full(n_frames, NAMES.index("rest"), np.int16)
    for label, start, end in phonemes:
        inside = (centres >= start) & (centres < end)
        vis[inside] = NAMES.index(viseme_of(label).name)
    return MouthTrack(per_frame_open.astype(np.float32), per_frame_width.astype(np.float32), vis)


# IPA (Piper's and Kokoro's phoneme timings, one symbol each) -> espeak-ng mnemonics (``VISEMES``' keys)
_IPA_PAIRS = {"aɪ": "aI", "aʊ": "aU", "eɪ": "eI", "oʊ": "oU", "ɔɪ": "OI", "dʒ": "dZ", "tʃ": "tS"}
_IPA = {"ə": "@", "ɐ": "@", "ᵊ": "@", "ʌ": "V", "ɛ": "E", "æ": "a", "ɑ": "A", "ɒ": "0", "ɔ": "O", "ɪ": "I", "ᵻ": "I",
        "ʊ": "U", "ɜ": "3", "ɚ": "3", "θ": "T", "ð": "D", "ʃ": "S", "ʒ": "Z", "ŋ": "N", "ɹ": "r", "ɾ": "t", "ʔ": "t",
        "ɡ": "g", "ɫ": "l", "ʤ": "dZ", "ʧ": "tS", "A": "eI", "I": "aI", "O": "oU", "W": "aU", "Y": "OI"}
_STRESS, _LENGTH = "ˈˌ", "ː"


def as_mnemonics(phonemes) -> list[tuple[str, float, float]]:
    """Phoneme timings of any voice as ``mouth_track`` reads them: espeak-ng's mnemonics (ASCII) as
    they are, IPA (Piper's, Kokoro's: non-ASCII symbols, stress marks) through ``from_ipa``."""
    items = [(str(p[0]), float(p[1]), float(p[2])) for p in phonemes]
    if any(not label.isascii() for label, _, _ in items):
        return from_ipa(items)
    return items


def from_ipa(phonemes) -> list[tuple[str, float, float]]:
    """IPA phoneme timings (``(label, start, end)`` one symbol each, as Piper and Kokoro give them) as
    espeak-ng mnemonics for ``mouth_track``: diphthongs and affricates joined, a stress mark's time given
    to the sound after it, a length mark's and a space's to the sound before, punctuation as rests."""
    out: list[list] = []
    pending = None  # start of a stress mark's time, for the next sound
    items = [(str(p[0]), float(p[1]), float(p[2])) for p in phonemes]
    i = 0
    while i < len(items):
        label, start, end = items[i]
        if label in _STRESS:
            pending = start if pending is None else pending
            i += 1
            continue
        if label in _LENGTH or label == " ":  # a space is no pause: connected speech runs on
            if out:
                out[-1][2] = end
            i += 1
            continue
        if i + 1 < len(items) and label + items[i + 1][0] in _IPA_PAIRS:
            name, end = _IPA_PAIRS[label + items[i + 1][0]], items[i + 1][2]
            i += 2
        else:
            name = "_" if not label.strip() or not label.isalpha() and label not in _IPA else _IPA.get(label, label)
            i += 1
        if pending is not None:
            start, pending = pending, None
        out.append([name, start, end])
    return [(n, s, e) for n, s, e in out]
