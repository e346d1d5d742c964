"""Training and validation windows for SyncNet and Wav2Lip, from one-second corpus segments.

``LipData`` keeps the segments' frames (``uint8 [N, F, 3, H, W]``, memory-mapped when they come
from the corpus cache), one face box per segment (``face.clip_box``, the same box the refiner uses),
and every frame's mel window (``[N, F, 1, 80, 16]``, ``audio.mel_windows``). Crops to 96x96 happen
per batch.

A window is 5 consecutive frames ``i..i+4``; its audio is the mel window of the middle frame
``i + 2`` (in sync) or of another frame's middle ``j + 2``, ``|j - i| >= min_shift`` (off sync).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from model.lipsync.audio import SAMPLE_RATE, mel_windows, melspectrogram
from model.lipsync.face import CROP, FaceBox, clip_box, crop

logger = logging.getLogger(__name__)

T = 5  # frames per SyncNet window


@dataclass(frozen=True)
class LipData:
    video: np.ndarray  # uint8 [N, F, 3, H, W] RGB
    boxes: np.ndarray  # int64 [N, 4] x0, y0, x1, y1
    windows: Tensor  # float32 [N, F, 1, 80, 16]
    speakers: np.ndarray | None = None  # int64 [N] speaker index (other-segment negatives stay within it)

    def __post_init__(self) -> None:
        n = self.video.shape[0]
        if n == 0:
            raise ValueError("no segments")
        if self.video.ndim != 5 or self.video.shape[2] != 3 or self.video.dtype != np.uint8:
            raise ValueError(f"video must be uint8 [N, F, 3, H, W], got {self.video.dtype} {self.video.shape}")
        if self.video.shape[1] < T + 1:
            raise ValueError(f"segments need at least {T + 1} frames, got {self.video.shape[1]}")
        if self.boxes.shape != (n, 4) or self.windows.shape[:2] != (n, self.video.shape[1]):
            raise ValueError("boxes and windows must match the segments")
        if self.speakers is not None and self.speakers.shape != (n,):
            raise ValueError("speakers must hold one index per segment")

    def __len__(self) -> int:
        return self.video.shape[0]

    @property
    def frames(self) -> int:
        return self.video.shape[1]

    @classmethod
    def from_arrays(cls, video: np.ndarray, audio: np.ndarray, fps: int = 16, *, speakers=None,
                    box_size: int | None = None, progress: bool = False) -> LipData:
        """``video uint8 [N, F, 3, H, W]``, ``audio float32 [N, S]`` at 16 kHz, optional speaker labels [N].

        ``box_size``: find each clip's face box on its frames brought down to that side (``clip_box``'s ``at``),
        so that clips of one corpus at two sizes are cropped alike (the receiver's frames are 64 px
        when it finds the box; its lip sync at 256 uses that box, scaled)."""
        from tqdm.auto import tqdm  # noqa: PLC0415

        if audio.ndim != 2 or audio.shape[0] != video.shape[0]:
            raise ValueError(f"audio must be [N, S] with N = {video.shape[0]}, got {audio.shape}")
        n, f = video.shape[:2]
        boxes = np.zeros((n, 4), np.int64)
        windows = torch.zeros(n, f, 1, 80, 16)
        for k in tqdm(range(n), desc="face boxes + mels", unit="seg", disable=not progress):
            frames = np.ascontiguousarray(np.asarray(video[k]).transpose(0, 2, 3, 1))  # [F, H, W, 3]
            b = clip_box(frames, at=box_size)
            boxes[k] = (b.x0, b.y0, b.x1, b.y1)
            windows[k] = mel_windows(melspectrogram(np.asarray(audio[k], np.float32)), f, fps)
        ids = None
        if speakers is not None:
            _, ids = np.unique(np.asarray(speakers), return_inverse=True)
        return cls(video, boxes, windows, ids)

    @classmethod
    def from_cache(cls, folder: str | Path, split: str = "train", *, limit: int | None = None, box_size: int | None = None,
                   progress: bool = True) -> LipData:
        from model.corpus.cache import SegmentCache  # noqa: PLC0415

        cache = SegmentCache(folder, split)
        if cache.sample_rate != SAMPLE_RATE:
            raise ValueError(f"{folder}: audio at {cache.sample_rate} Hz, the lip-sync networks need {SAMPLE_RATE} Hz")
        video, audio, _ = cache.arrays()
        speakers = cache.speakers()
        if limit is not None:
            video, audio, speakers = video[:limit], audio[:limit], speakers[:limit]
        if len(video) == 0:
            raise ValueError(f"{folder}: the {split} split is empty")
        return cls.from_arrays(video, audio, cache.fps, speakers=speakers, box_size=box_size, progress=progress)

    # -- crops --------------------------------------------------------------------------------------
    def faces(self, n: int, frames: np.ndarray) -> Tensor:
        """Frames ``frames`` of segment ``n`` as 96x96 face crops: float32 ``[len, 3, 96, 96]`` in [0, 1]."""
        box = FaceBox(*(int(v) for v in self.boxes[n]))
        crops = np.stack([crop(np.asarray(self.video[n, i]).transpose(1, 2, 0), box, CROP) for i in frames])
        return torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0)

    # -- SyncNet batches ----------------------------------------------------------------------------
    def sync_batch(self, rng: np.random.Generator, batch: int, *, min_shift: int = 2,
                   other_segment: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
        """``(mel [B,1,80,16], lower halves [B,15,48,96], label [B])``: half in sync (1), half off (0).

        Off-sync audio comes from the same segment ``min_shift``+ frames away (Wav2Lip's negatives),
        or, for a share ``other_segment`` of them, from another segment of the same speaker (easier:
        they teach "this mouth says this or not" first, which gets the expert off chance level sooner
        on a small corpus; the same speaker, so that voice-to-face identity is no shortcut).
        """
        n = rng.integers(0, len(self), batch)
        start = rng.integers(0, self.frames - T + 1, batch)
        label = (np.arange(batch) % 2 == 0).astype(np.float32)
        rng.shuffle(label)
        other = np.array([_other_start(rng, s, self.frames, min_shift) for s in start])
        audio_start = np.where(label > 0, start, other)
        audio_n = n.copy()
        if other_segment > 0 and len(self) > 1:
            swap = np.nonzero((label == 0) & (rng.random(batch) < other_segment))[0]
            for b in swap:
                pool = self._same_speaker(int(n[b]))
                if len(pool):
                    audio_n[b] = int(rng.choice(pool))
                    audio_start[b] = int(rng.integers(0, self.frames - T + 1))
        return self._sync_items(n, start, audio_start, label, audio_n)

    def _same_speaker(self, n: int) -> np.ndarray:
        """Other segments of segment ``n``'s speaker (all other segments when speakers are unknown)."""
        if self.speakers is None:
            return np.delete(np.arange(len(self)), n)
        same = np.nonzero(self.speakers == self.speakers[n])[0]
        return same[same != n]

    def sync_eval_set(self, *, min_shift: int = 2, starts_per_segment: int = 4, seed: int = 1234):
        """A fixed list of (segment, video start, audio start, label) for validation."""
        rng = np.random.default_rng(seed)
        items = []
        for n in range(len(self)):
            for s in np.linspace(0, self.frames - T, starts_per_segment).round().astype(int):
                items.append((n, s, s, 1.0))
                items.append((n, s, _other_start(rng, s, self.frames, min_shift), 0.0))
        return items

    def _sync_items(self, n, start, audio_start, label, audio_n=None) -> tuple[Tensor, Tensor, Tensor]:
        audio_n = n if audio_n is None else audio_n
        mel = self.windows[torch.as_tensor(audio_n), torch.as_tensor(np.asarray(audio_start) + T // 2)]  # [B,1,80,16]
        faces = torch.stack([self.faces(k, np.arange(s, s + T)) for k, s in zip(n, start)])  # [B,5,3,96,96]
        return mel, lower_halves(faces), torch.as_tensor(np.asarray(label, np.float32))

    # -- generator batches --------------------------------------------------------------------------
    def gen_batch(self, rng: np.random.Generator, batch: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(mels [B,5,1,80,16], inputs [B,6,5,96,96], target [B,3,5,96,96], sync mel [B,1,80,16])``.

        Inputs are the target frames with their lower half masked plus 5 reference frames from
        another window of the same segment (identity, not pose or mouth), as Wav2Lip trains.
        """
        n = rng.integers(0, len(self), batch)
        start = rng.integers(0, self.frames - T + 1, batch)
        ref = np.array([_other_start(rng, s, self.frames, 1) for s in start])
        return self._gen_items(n, start, ref)

    def gen_eval_set(self, seed: int = 4321) -> list[tuple[int, int, int]]:
        rng = np.random.default_rng(seed)
        starts = np.linspace(0, self.frames - T, 3).round().astype(int)
        return [(n, s, _other_start(rng, s, self.frames, 1)) for n in range(len(self)) for s in starts]

    def _gen_items(self, n, start, ref) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        from model.lipsync.face import mask_lower_half  # noqa: PLC0415

        target = torch.stack([self.faces(k, np.arange(s, s + T)) for k, s in zip(n, start)])  # [B,5,3,96,96]
        refs = torch.stack([self.faces(k, np.arange(r, r + T)) for k, r in zip(n, ref)])
        inputs = torch.cat([mask_lower_half(target), refs], dim=2).permute(0, 2, 1, 3, 4)  # [B,6,5,96,96]
        idx_n = torch.as_tensor(n)[:, None]
        idx_f = torch.as_tensor(start)[:, None] + torch.arange(T)[None, :]
        mels = self.windows[idx_n, idx_f]  # [B,5,1,80,16]
        sync_mel = self.windows[torch.as_tensor(n), torch.as_tensor(start) + T // 2]  # [B,1,80,16]
        return mels, inputs.contiguous(), target.permute(0, 2, 1, 3, 4).contiguous(), sync_mel


class LipMix:
    """Generator batches drawn from several ``LipData`` (for example one corpus at 64 and at 256 px):
    each batch takes ``shares`` of its windows from each part (rounded; the rest from the last)."""

    def __init__(self, parts: list[LipData], shares: list[float]) -> None:
        if not parts or len(parts) != len(shares) or min(shares) < 0 or sum(shares) <= 0:
            raise ValueError("LipMix needs one non-negative share per part, not all zero")
        self.parts = list(parts)
        total = float(sum(shares))
        self.shares = [s / total for s in shares]

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def gen_batch(self, rng: np.random.Generator, batch: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        counts = [int(round(batch * s)) for s in self.shares[:-1]]
        counts.append(batch - sum(counts))
        pieces = [p.gen_batch(rng, c) for p, c in zip(self.parts, counts) if c > 0]
        return tuple(torch.cat(items) for items in zip(*pieces))


def lower_halves(faces: Tensor) -> Tensor:
    """``[B, 5, 3, H, W]`` (frames on dim 1) -> SyncNet input ``[B, 15, H/2, W]`` (frame-major channels)."""
    b, t, c, h, w = faces.shape
    return faces[..., h // 2:, :].reshape(b, t * c, h - h // 2, w)


def _other_start(rng: np.random.Generator, start: int, frames: int, min_shift: int) -> int:
    choices = [j for j in range(frames - T + 1) if abs(j - start) >= min_shift]
    if not choices:
        raise ValueError(f"segments of {frames} frames leave no window {min_shift}+ frames away")
    return int(rng.choice(choices))
