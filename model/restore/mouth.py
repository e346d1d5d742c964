"""The mouth sharpener: the lip-sync network's soft mouth drawn crisp, at the output size.

At 256 pixels the lip-sync generator (1.9 M parameters, L1 + sync loss, no GAN) draws an open mouth as a
smear of teeth-white and tongue-pink with a few cyan pixels, where the corpus draws a white band of
teeth over a pink tongue inside a dark outline (``docs/lipsync.md``). Its low frequencies (how open
the mouth is, where the lips are) are right, and they are what the sync judge reads; its high
frequencies are the average of many mouths. This network keeps the first and redraws the second: a
``RestoreNet`` (no reference, no attention) run on a square patch around the mouth after the paste,
blended back only where lip sync changed the frame (the paste's own weights), so nothing outside the
mouth moves. Not in the paper (which stops at Wav2Lip).

**Not shipped** (``docs/lipsync.md``, fifteenth session): on held-out corpus pairs its mouths are nearly
the truth's, but in calls, unable to hear the speech, it redraws each mouth towards the corpus's most
common one (a band of teeth, or closed lips), and SyncNet's confidence falls (LSE-C 0.26 -> 0.05; with
the input's low frequencies locked, ``LOCK_SIGMA``, -15 % and the blob stays). The receiver runs one
only with ``--mouth on`` and a weights folder holding ``mouth/``. What would work: the same stage
hearing the speech (a Wav2Lip at this patch's scale, trained with the sync expert), on a GPU.

Training pairs (``MouthBatches``), 128-pixel patches around the mouth of corpus frames at 256:

- ``lipsynced``: the shipped lip-sync network's redraw of a corpus clip from its own speech (the receiver's
  path at the output size; by default of the clip brought down to 64 and upscaled, as a call's frames
  reach lip sync), target the true frame. Only frames whose mouths agree with the truth at low
  frequencies are drawn (``agree``: below the pool's ``keep`` quantile), so the target never asks for
  another shape than the input shows: a sharpener trained on disagreeing pairs would learn to hedge
  (close the mouth), as the restorer's second pass did (``model/weights/restore`` card).
- ``synthetic``: the true patch brought down to the generator's scale, blurred, mottled and speckled,
  brought back up: shapes identical by construction.

    textcall corpus mouths --out ~/.cache/textcall/train/mouth-pairs        # pairs from cache256 (minutes)
    textcall train mouth --pairs ~/.cache/textcall/train/mouth-pairs --out DIR   # model/restore/train_cli.py
    textcall receive --model W --mouth on         # W: a weights folder with DIR as W/mouth
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

logger = logging.getLogger(__name__)

PATCH = 128  # side of the patch around the mouth, at the 256-pixel output
DEFAULT_CENTRE = (0.53, 0.5)  # the mouth's centre (row, column) as shares of a corpus frame, where nothing changed
AGREE_SIGMA = 4.0  # the low pass under which a redrawn mouth must agree with the truth (output pixels)
# the sharpened patch keeps the input's content below this Gaussian (output pixels; 0 = off): the network
# alone closed the calls' mouths (docs/lipsync.md: 1.5 kept the most sync of 0-6)
LOCK_SIGMA = 1.5
AGREE_QUANTILE = 95  # of the patch's pixels: the mouth is a small part of it, so not the mean


def mouth_centre(change: np.ndarray, default: tuple[float, float]) -> tuple[float, float]:
    """The weighted centre (row, column) in pixels of a non-negative ``[H, W]`` change map; ``default`` when flat."""
    from model.lipsync.face import weighted_centre

    return weighted_centre(change, np.arange(change.shape[0]), np.arange(change.shape[1]), default)


def patch_origin(centre: tuple[float, float], height: int, width: int, side: int = PATCH) -> tuple[int, int]:
    """Top-left corner of a ``side`` square centred on ``centre``, moved to lie inside the image."""
    y = int(round(centre[0] - side / 2))
    x = int(round(centre[1] - side / 2))
    return min(max(y, 0), max(height - side, 0)), min(max(x, 0), max(width - side, 0))


@torch.no_grad()
def make_mouth_pairs(cache: Path, lipsync: Path, out: Path, *, upscale: Path | None = None, splits: tuple[str, ...] = ("train", "val"),
                     limit: int | None = None, progress: bool = True) -> Path:
    """Lip-sync every clip of ``cache`` (a corpus cache at the output size) from its own speech, as the
    receiver does at 256 (box found at 64, only the mouth's changes pasted), and keep ``PATCH`` squares
    around each clip's mouth. With ``upscale`` (an upscaler folder) the frames lip sync redraws are the
    clip brought down to the joint model's 64 pixels and upscaled, its first frame upscaled alone as the
    call's face, as a drawn call's frames reach lip sync (soft, the mouth only roughly drawn); without, the
    true frames, whose crisp mouth the lip-sync network then largely copies. Writes ``out/{split}.npz`` with ``synced``, ``truth`` (uint8 ``[N, F, P, P, 3]``),
    ``agree`` (float ``[N, F]``: the ``AGREE_QUANTILE`` percentile of the largest channel difference of the
    two low-passed, 8-bit levels),
    ``index`` (the clip in its split) and ``origin`` (``[N, 2]``: the patch's top-left corner)."""
    import cv2  # noqa: PLC0415
    from tqdm.auto import tqdm

    from model.corpus.cache import SegmentCache
    from model.lipsync import LipSync

    syncer = LipSync.load(lipsync)
    upscaler = None
    if upscale is not None:
        from model.restore.restorer import Restorer

        upscaler = Restorer.load(upscale)
    out.mkdir(parents=True, exist_ok=True)
    for split in splits:
        segs = SegmentCache(Path(cache).expanduser(), split=split)
        video, audio, _ = segs.arrays()
        n = len(video) if limit is None else min(limit, len(video))
        if not n:
            continue
        _, frames, _, size, _ = video.shape
        if size < PATCH:
            raise ValueError(f"{cache} holds {size}-pixel frames: the mouth sharpener needs the output size (>= {PATCH})")
        synced = np.empty((n, frames, PATCH, PATCH, 3), np.uint8)
        truth = np.empty_like(synced)
        agree = np.empty((n, frames), np.float32)
        origin = np.empty((n, 2), np.int32)
        for i in tqdm(range(n), desc=f"lip-syncing {split} clips", disable=not progress):
            clip = np.ascontiguousarray(video[i].transpose(0, 2, 3, 1))
            base = clip
            if upscaler is not None:
                small = np.stack([cv2.resize(f, (upscaler.net.cfg.image_size,) * 2, interpolation=cv2.INTER_AREA) for f in clip])
                face = upscaler.upscale(small[:1], None)[0]  # a drawn call's face: upscaled once on its own
                base = upscaler.upscale(small, face)
            made = syncer.refine(base, np.asarray(audio[i], np.float32), box_size=64)
            change = np.abs(made.astype(np.float32) - base.astype(np.float32)).max(-1).mean(0)
            y, x = patch_origin(mouth_centre(change, (DEFAULT_CENTRE[0] * size, DEFAULT_CENTRE[1] * size)), size, size)
            origin[i] = (y, x)
            synced[i] = made[:, y : y + PATCH, x : x + PATCH]
            truth[i] = clip[:, y : y + PATCH, x : x + PATCH]
            for f in range(frames):
                a = cv2.GaussianBlur(synced[i, f].astype(np.float32), (0, 0), AGREE_SIGMA)
                b = cv2.GaussianBlur(truth[i, f].astype(np.float32), (0, 0), AGREE_SIGMA)
                agree[i, f] = float(np.percentile(np.abs(a - b).max(-1), AGREE_QUANTILE))
        np.savez(out / f"{split}.npz", synced=synced, truth=truth, agree=agree, index=np.arange(n), origin=origin)
        logger.info("%s: %d clips, agreement median %.2f levels", split, n, float(np.median(agree)))
    (out / "pairs.json").write_text(json.dumps({"cache": str(cache), "lipsync": str(lipsync), "upscale": str(upscale), "patch": PATCH,
                                                "agree_sigma": AGREE_SIGMA}, indent=2) + "\n")
    return out


def speckle_degrade(x: Tensor, gen: torch.Generator) -> Tensor:
    """``[B, 3, P, P]`` in [-1, 1] -> as the lip-sync network would draw it at the output size: brought
    down to its 96-pixel crop's scale (a third to a half), blurred, mottled in colour, a few light and
    pink specks, brought back up. Shapes (how open, where the lips are) stay those of the input."""
    from model.restore.data import _gaussian

    b, _, s, _ = x.shape
    u = lambda lo, hi, *shape: torch.empty(*shape).uniform_(lo, hi, generator=gen)  # noqa: E731
    out = []
    for k in range(b):  # each its own scale
        small = max(16, int(round(s * float(u(0.33, 0.5, 1)))))
        y = F.interpolate(x[k : k + 1], size=(small, small), mode="area")
        y = _gaussian(y, u(0.3, 1.1, 1))
        field = F.interpolate(torch.randn(1, 3, small // 4, small // 4, generator=gen), size=(small, small), mode="bilinear",
                              align_corners=False)
        y = y + float(u(0.0, 0.12, 1)) * (field - field.mean(dim=1, keepdim=True))
        spots = (torch.rand(1, 1, small, small, generator=gen) < float(u(0.0, 0.02, 1))).float()
        spots = F.max_pool2d(spots, 3, 1, 1) if float(u(0, 1, 1)) < 0.5 else spots
        colour = torch.tensor([[0.7, 0.95, 0.95], [0.9, 0.3, 0.6]])[int(torch.randint(0, 2, (1,), generator=gen))]
        y = y + spots * float(u(0.2, 0.6, 1)) * (colour.reshape(1, 3, 1, 1) * 2 - 1 - y)
        out.append(F.interpolate(y, size=(s, s), mode="bilinear", align_corners=False))
    return torch.cat(out).clamp(-1, 1)


class MouthBatches:
    """``(input, reference, target)`` patches for ``train_restore``: ``share`` of each batch from the
    lip-synced pairs that agree with their truth (``agree`` under the ``keep`` quantile of the pool), the
    rest the true patches degraded (``speckle_degrade``). The reference is all zeros (none). Random
    crops of ``size`` from the stored patches, mirrored at random."""

    def __init__(self, pairs: dict[str, np.ndarray], *, keep: float = 0.6, size: int = PATCH, held: dict | None = None) -> None:
        if not 0 < keep <= 1:
            raise ValueError("keep must be in (0, 1]")
        self.synced, self.truth, agree = pairs["synced"], pairs["truth"], pairs["agree"]
        self.size = size
        self.threshold = float(np.quantile(agree, keep))
        self.good = np.argwhere(agree <= self.threshold)  # [M, 2] (clip, frame)
        self.generated = True  # train_restore's validation draws all-generated batches from held_out()
        self._held = held

    @classmethod
    def load(cls, folder: Path, *, keep: float = 0.6, size: int = PATCH) -> tuple[MouthBatches, MouthBatches | None]:
        """Training batches from ``folder/train.npz`` and validation ones from ``val.npz`` (None if missing)."""
        folder = Path(folder).expanduser()
        if not (folder / "train.npz").is_file():
            raise FileNotFoundError(f"{folder} holds no train.npz: make the pairs with `textcall corpus mouths`")
        load = lambda name: dict(np.load(folder / name))  # noqa: E731
        val = cls(load("val.npz"), keep=keep, size=size) if (folder / "val.npz").is_file() else None
        return cls(load("train.npz"), keep=keep, size=size, held=val), val

    def held_out(self) -> MouthBatches | None:
        return self._held

    def draw(self, n: int, share: float, rng: np.random.Generator, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        from model.restore.restorer import to_tensor

        n_real = int(round(n * share))
        rows = self.good[rng.integers(0, len(self.good), size=n)]
        s, p = self.size, self.truth.shape[2]
        ys, xs = rng.integers(0, p - s + 1, size=n), rng.integers(0, p - s + 1, size=n)
        cut = lambda a, k: np.stack([a[c, f, y : y + s, x : x + s] for (c, f), y, x in zip(rows[:k], ys[:k], xs[:k])])  # noqa: E731
        target = to_tensor(cut(self.truth, n))
        x = to_tensor(cut(self.synced, n_real)) if n_real else target[:0]  # only the lip-synced crops it uses
        if n_real < n:
            x = torch.cat([x, speckle_degrade(target[n_real:], gen)])
        flip = torch.from_numpy(rng.random(n) < 0.5)
        x[flip], target[flip] = x[flip].flip(-1), target[flip].flip(-1)
        return x, torch.zeros_like(x), target


class MouthSharpener:
    """A loaded mouth sharpener for the receiver: ``sharpen(frames, weight)`` on lip-synced output frames."""

    def __init__(self, restorer, lock: float | None = None) -> None:
        self.restorer = restorer
        self.side = restorer.net.cfg.image_size
        self.lock = LOCK_SIGMA if lock is None else lock

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> MouthSharpener:
        from model.restore.restorer import Restorer

        return cls(Restorer.load(folder, device))

    @torch.no_grad()
    def sharpen(self, frames: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """uint8 ``[B, H, W, 3]`` lip-synced frames and float ``[B, H, W]`` in [0, 1] (how much of each pixel
        lip sync drew) -> the frames with the drawn pixels redrawn crisp (a patch around each mouth)."""
        b, h, w = weight.shape
        if frames.shape[:3] != (b, h, w) or min(h, w) < self.side:
            return frames.copy()
        corners = [patch_origin(mouth_centre(m, (DEFAULT_CENTRE[0] * h, DEFAULT_CENTRE[1] * w)), h, w, self.side) for m in weight]
        s = self.side
        patches = np.stack([f[y : y + s, x : x + s] for f, (y, x) in zip(frames, corners)])
        made = self.restorer.restore(patches, None).astype(np.float32)
        if self.lock > 0:  # the input's low frequencies kept: only finer detail is redrawn (LOCK_SIGMA)
            import cv2  # noqa: PLC0415

            for k in range(len(made)):
                low = cv2.GaussianBlur(patches[k].astype(np.float32), (0, 0), self.lock)
                made[k] = made[k] - cv2.GaussianBlur(made[k], (0, 0), self.lock) + low
        out = frames.copy()
        for k, (y, x) in enumerate(corners):
            a = weight[k, y : y + s, x : x + s, None]
            region = out[k, y : y + s, x : x + s].astype(np.float32)
            out[k, y : y + s, x : x + s] = np.clip(region * (1 - a) + made[k] * a + 0.5, 0, 255).astype(np.uint8)
        return out
