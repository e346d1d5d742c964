"""The segment cache: what ``textcall corpus prepare`` writes and training reads (numpy only).

One folder per cache::

    index.json           shapes, rates, per-split segment metadata, skip counts, the settings used
    train.video.u8       raw uint8   [N, F, C, H, W] (RGB), memory-mapped on read
    train.audio.i16      raw int16   [N, S] (16-bit PCM, returned as float32 in [-1, 1])
    val.* / test.*       the same for the other splits

Raw arrays with their shape in the index read at disk speed with ``np.memmap`` and need no
decompression; int16 audio halves the size and loses nothing the 16-bit sources had.

    >>> cache = SegmentCache("~/.cache/textcall/corpus/cache64")          # the training split
    >>> video, audio, captions = cache.arrays()                          # [N,16,3,64,64] u8, [N,16000] f32
    >>> cache[0].caption, cache[0].speaker, SegmentCache(path, split="test").__len__()
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
INDEX = "index.json"
VERSION = 1


@dataclass(frozen=True)
class Segment:
    video: np.ndarray  # uint8 [F, C, H, W] RGB
    audio: np.ndarray  # float32 [S] in [-1, 1]
    caption: str
    speaker: str
    sentence: str
    split: str
    start: float  # seconds into the source clip


class CacheWriter:
    """Appends segments split by split; ``close`` writes the index that makes the cache readable."""

    def __init__(self, folder: str | Path, *, frames: int, size: int, samples: int, fps: int, sample_rate: int) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / INDEX).unlink(missing_ok=True)  # the cache is invalid until closed
        self.shape = {"frames": frames, "channels": 3, "size": size, "samples": samples, "fps": fps, "sample_rate": sample_rate}
        self._files: dict[str, tuple] = {}
        self._meta: dict[str, list[dict]] = {s: [] for s in SPLITS}
        self._closed = False

    def add(self, split: str, video: np.ndarray, audio: np.ndarray, meta: dict) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}")
        f, s = self.shape["frames"], self.shape["size"]
        if video.shape != (f, 3, s, s) or video.dtype != np.uint8:
            raise ValueError(f"video must be uint8 [{f}, 3, {s}, {s}], got {video.dtype} {video.shape}")
        if audio.shape != (self.shape["samples"],):
            raise ValueError(f"audio must be [{self.shape['samples']}], got {audio.shape}")
        if split not in self._files:
            self._files[split] = (
                open(self.folder / f"{split}.video.u8", "wb"),  # noqa: SIM115 (closed in close())
                open(self.folder / f"{split}.audio.i16", "wb"),  # noqa: SIM115
            )
        vf, af = self._files[split]
        vf.write(np.ascontiguousarray(video).tobytes())
        af.write((np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes())
        self._meta[split].append(meta)

    def close(self, extra: dict | None = None) -> dict:
        if self._closed:
            return {}
        self._closed = True
        for vf, af in self._files.values():
            vf.close()
            af.close()
        for split in SPLITS:
            if split not in self._files:
                for suffix in (".video.u8", ".audio.i16"):
                    (self.folder / f"{split}{suffix}").unlink(missing_ok=True)
        index = {
            "version": VERSION,
            **self.shape,
            "counts": {s: len(self._meta[s]) for s in SPLITS},
            "segments": self._meta,
            **(extra or {}),
        }
        tmp = self.folder / (INDEX + ".part")
        tmp.write_text(json.dumps(index, indent=1))
        tmp.replace(self.folder / INDEX)
        return index


class SegmentCache:
    """Read-only view of one split of a cache; ``split="train"`` by default, so the test split is
    only ever read when asked for by name."""

    def __init__(self, folder: str | Path, split: str = "train") -> None:
        self.folder = Path(folder).expanduser()
        index_path = self.folder / INDEX
        if not index_path.exists():
            raise FileNotFoundError(f"{self.folder} is not a segment cache (no {INDEX}); run `textcall corpus prepare`")
        self.index = json.loads(index_path.read_text())
        if self.index.get("version") != VERSION:
            raise ValueError(f"{index_path}: cache version {self.index.get('version')}, expected {VERSION}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.meta: list[dict] = self.index["segments"][split]
        n = len(self.meta)
        f, c, s, samples = (self.index[k] for k in ("frames", "channels", "size", "samples"))
        if n:
            self._video = np.memmap(self.folder / f"{split}.video.u8", np.uint8, "r", shape=(n, f, c, s, s))
            self._audio = np.memmap(self.folder / f"{split}.audio.i16", "<i2", "r", shape=(n, samples))
        else:
            self._video = np.zeros((0, f, c, s, s), np.uint8)
            self._audio = np.zeros((0, samples), np.int16)

    @property
    def fps(self) -> int:
        return int(self.index["fps"])

    @property
    def sample_rate(self) -> int:
        return int(self.index["sample_rate"])

    def __len__(self) -> int:
        return len(self.meta)

    def __getitem__(self, i: int) -> Segment:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        m = self.meta[i]
        return Segment(
            video=np.array(self._video[i]),
            audio=self._audio[i].astype(np.float32) / 32767.0,
            caption=m["caption"], speaker=m["speaker"], sentence=m["sentence"], split=self.split, start=m["start"],
        )

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(video uint8 [N,F,C,H,W] memmap, audio float32 [N,S], captions str [N])`` of this split."""
        audio = np.asarray(self._audio, dtype=np.float32) / 32767.0
        captions = np.array([m["caption"] for m in self.meta], dtype=str)
        return self._video, audio, captions

    def speakers(self) -> np.ndarray:
        return np.array([m["speaker"] for m in self.meta], dtype=str)


def merge_caches(folders: list[str | Path], out: str | Path) -> dict:
    """One cache holding every split of ``folders`` (same segment shape), in order; each segment's
    metadata gains ``cache`` (the folder it came from). For training on two corpora at once, e.g.
    the espeak-ng corpus and one spoken by another voice (``textcall corpus merge``)."""
    if len(folders) < 2:
        raise ValueError("merging needs at least two caches")
    indexes = [SegmentCache(f, "train").index for f in folders]
    keys = ("frames", "channels", "size", "samples", "fps", "sample_rate")
    for folder, index in zip(folders[1:], indexes[1:]):
        if any(index[k] != indexes[0][k] for k in keys):
            raise ValueError(f"{folder} holds segments of another shape than {folders[0]} "
                             f"({', '.join(f'{k} {index[k]} vs {indexes[0][k]}' for k in keys if index[k] != indexes[0][k])})")
    first = indexes[0]
    out = Path(out).expanduser()
    if any(out.resolve() == Path(f).expanduser().resolve() for f in folders):
        raise ValueError("the merged cache must be a new folder")
    writer = CacheWriter(out, frames=first["frames"], size=first["size"], samples=first["samples"], fps=first["fps"],
                         sample_rate=first["sample_rate"])
    for split in SPLITS:
        for folder in folders:
            cache = SegmentCache(folder, split)
            for segment, meta in zip(cache, cache.meta):
                writer.add(split, segment.video, segment.audio, {**meta, "cache": str(Path(folder).expanduser())})
    return writer.close({"source": [str(Path(f).expanduser()) for f in folders]})
