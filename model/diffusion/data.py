"""Training data for the diffusion model and the classifier, as three aligned arrays.

The interface is deliberately tiny: ``Segments(video uint8 [N, F, C, H, W], audio float32 [N, S],
caption int64 [N])`` with caption indices into the model's caption vocabulary (0 = none).
``load_segments(DIR)`` reads ``*.npz`` files holding ``video``, ``audio`` and ``caption`` (indices, or
caption strings) arrays, or asks the corpus cache (``model.corpus.cache.SegmentCache``) when the
folder is one of its caches.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.diffusion.config import DEFAULT_CAPTIONS, caption_index

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segments:
    video: np.ndarray  # uint8 [N, F, C, H, W], RGB
    audio: np.ndarray  # float32 [N, S] in [-1, 1]
    caption: np.ndarray  # int64 [N], 0 = no caption
    # int64 [N]: who speaks (a number per person, unique across the folders loaded together), or
    # None; a reference-conditioned model draws each segment's reference from its person's others
    speaker: np.ndarray | None = None
    # float32 [N, SLOTS]: each segment's person as a description vector (``model.describe.attributes``)
    # for a network that reads descriptions, or None; a drawn corpus's speakers are known in full
    # (``corpus_people``), anyone else by the gender of the caption
    description: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.video.dtype != np.uint8 or self.video.ndim != 5:
            raise ValueError(f"video must be uint8 [N, F, C, H, W], got {self.video.dtype} {self.video.shape}")
        if self.audio.ndim != 2:
            raise ValueError(f"audio must be [N, S], got {self.audio.shape}")
        n = self.video.shape[0]
        if self.audio.shape[0] != n or self.caption.shape != (n,):
            raise ValueError("video, audio and caption must hold the same number of segments")
        if n == 0:
            raise ValueError("no segments")
        if self.speaker is not None and self.speaker.shape != (n,):
            raise ValueError("speaker must hold one id per segment")
        if self.description is not None and (self.description.ndim != 2 or self.description.shape[0] != n):
            raise ValueError("description must hold one vector per segment")

    def __len__(self) -> int:
        return self.video.shape[0]

    def subset(self, keep: np.ndarray) -> Segments:
        return Segments(self.video[keep], self.audio[keep], self.caption[keep],
                        None if self.speaker is None else self.speaker[keep],
                        None if self.description is None else self.description[keep])

    def descriptions(self, vocabulary: tuple[str, ...]) -> np.ndarray:
        """float32 [N, SLOTS]: ``description`` when known, else each caption's gender (or nothing said)."""
        if self.description is not None:
            return self.description
        return _caption_vectors(vocabulary)[self.caption]


def _captions_to_indices(captions: np.ndarray, vocabulary: tuple[str, ...]) -> np.ndarray:
    if captions.dtype.kind in "iu":
        return captions.astype(np.int64)
    return np.array([caption_index(str(c), vocabulary) for c in captions], dtype=np.int64)


def load_npz(folder: Path, vocabulary: tuple[str, ...]) -> Segments:
    files = sorted(folder.glob("*.npz"))
    videos, audios, captions = [], [], []
    for path in files:
        with np.load(path, allow_pickle=False) as data:
            videos.append(data["video"])
            audios.append(data["audio"].astype(np.float32).reshape(data["audio"].shape[0], -1))
            captions.append(_captions_to_indices(data["caption"], vocabulary))
    return Segments(np.concatenate(videos), np.concatenate(audios), np.concatenate(captions))


def _from_corpus_cache(folder: Path, vocabulary: tuple[str, ...]) -> Segments:
    """Adapter to the corpus cache (another package): any object with ``arrays()`` or segment items."""
    from model.corpus.cache import SegmentCache  # noqa: PLC0415 (optional sibling)

    cache = SegmentCache(folder)
    for name in ("arrays", "load_arrays", "to_arrays"):
        if hasattr(cache, name):
            video, audio, captions = getattr(cache, name)()
            names = cache.speakers() if hasattr(cache, "speakers") else None
            indices = _captions_to_indices(np.asarray(captions), vocabulary)
            return Segments(np.asarray(video), np.asarray(audio, np.float32), indices,
                            None if names is None else _speaker_numbers(names),
                            None if names is None else _descriptions(cache, names, indices, vocabulary))
    items = list(cache)
    return Segments(
        np.stack([np.asarray(s.video) for s in items]),
        np.stack([np.asarray(s.audio, np.float32) for s in items]),
        _captions_to_indices(np.array([s.caption for s in items]), vocabulary),
    )


@functools.lru_cache(maxsize=8)  # a training step asks for it when its segments carry no descriptions
def _caption_vectors(vocabulary: tuple[str, ...]) -> np.ndarray:
    """float32 [captions, SLOTS]: each caption of the vocabulary as a description (its gender)."""
    from model.diffusion.captions import caption_condition

    return np.stack([caption_condition(k, vocabulary, True).numpy()[0] for k in range(len(vocabulary))])


def _descriptions(cache, names: np.ndarray, indices: np.ndarray, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Each segment's person as a description vector: in full for the speakers of a corpus that
    ``textcall corpus synth`` drew (``corpus_people`` of the cache's source), else the caption's gender."""
    from model.describe.attributes import corpus_people, vector

    index = getattr(cache, "index", None) or {}
    people = corpus_people(index["source"]) if "source" in index else {}
    table = _caption_vectors(vocabulary)
    return np.stack([vector(people[n]) if n in people else table[k] for n, k in zip(names.tolist(), indices.tolist())]).astype(np.float32)


def _speaker_numbers(names: np.ndarray) -> np.ndarray:
    _, numbers = np.unique(names, return_inverse=True)
    return numbers.astype(np.int64)


def load_segments(folder: str | Path, vocabulary: tuple[str, ...] = DEFAULT_CAPTIONS) -> Segments:
    """One folder, or several separated by commas (their segments concatenated; speakers kept apart)."""
    parts = [p for p in str(folder).split(",") if p] if isinstance(folder, str) and "," in folder else [folder]
    if len(parts) > 1:
        loaded = [load_segments(p, vocabulary) for p in parts]
        speaker = description = None
        if all(s.speaker is not None for s in loaded):
            offsets = np.cumsum([0] + [int(s.speaker.max()) + 1 for s in loaded[:-1]])
            speaker = np.concatenate([s.speaker + off for s, off in zip(loaded, offsets)])
        if any(s.description is not None for s in loaded):
            description = np.concatenate([s.descriptions(vocabulary) for s in loaded])
        return Segments(np.concatenate([s.video for s in loaded]), np.concatenate([s.audio for s in loaded]),
                        np.concatenate([s.caption for s in loaded]), speaker, description)
    folder = Path(folder).expanduser()  # "~" after a comma is not expanded by the shell
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {folder} does not exist")
    if any(folder.glob("*.npz")):
        segments = load_npz(folder, vocabulary)
    else:
        try:
            segments = _from_corpus_cache(folder, vocabulary)
        except ImportError as exc:
            raise FileNotFoundError(f"{folder} holds no *.npz segments and the corpus cache is unavailable ({exc})") from exc
    logger.info("loaded %d segments from %s: video %s, audio %s", len(segments), folder, segments.video.shape, segments.audio.shape)
    return segments


def toy_segments(
    n: int, frames: int, size: int, samples: int, *, seed: int = 0
) -> Segments:
    """An easy synthetic set for tests: class 1 is bright with a low tone, class 2 dark with a high tone."""
    rng = np.random.default_rng(seed)
    caption = rng.integers(1, 3, size=n).astype(np.int64)
    level = np.where(caption == 1, 200, 55).astype(np.float32)
    video = level[:, None, None, None, None] + rng.normal(0, 10, size=(n, frames, 3, size, size))
    tone = np.where(caption == 1, 4.0, 40.0)
    t = np.arange(samples) / samples
    audio = 0.5 * np.sin(2 * np.pi * tone[:, None] * t[None]) + rng.normal(0, 0.01, size=(n, samples))
    return Segments(np.clip(video, 0, 255).astype(np.uint8), audio.astype(np.float32), caption)


