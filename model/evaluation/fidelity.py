"""How far generated frames are from the corpus's: picture statistics and a two-sample test.

Picture statistics (each also as a ratio to the corpus's, computed the same way on held-out corpus
clips; the bar is within 1.2x either way):
- ``luma detail``: mean |Laplacian| of the grey frames (edges and texture);
- ``colour noise``: mean |Laplacian| of the Lab a/b channels (blotchy colour confetti);
- ``frame change``: mean |difference| between consecutive frames in 8-bit levels (flicker, drift).

The two-sample test (a classifier two-sample test, Lopez-Paz & Oquab 2017): a small CNN is trained
to tell generated frames from held-out corpus frames, each side split by clip into a training half
and a test half, and its accuracy on the test half is reported. 50 % means it cannot tell them apart;
the bar is 80 %. It sees frames at the output's resolution and nothing else (no labels, no audio).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

STATISTICS = ("luma detail", "colour noise", "frame change")


def luma_detail(video: np.ndarray) -> float:
    import cv2

    return float(np.mean([np.abs(cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)).mean()
                          for f in video]))


def colour_noise(video: np.ndarray) -> float:
    import cv2

    out = []
    for frame in video:
        lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB).astype(np.float32)
        out.append(sum(np.abs(cv2.Laplacian(lab[..., c], cv2.CV_32F)).mean() for c in (1, 2)))
    return float(np.mean(out))


def frame_change(video: np.ndarray) -> float:
    return float(np.abs(np.diff(video.astype(np.float32), axis=0)).mean()) if len(video) > 1 else 0.0


def statistics(clips: list[np.ndarray]) -> dict[str, float]:
    """Mean of each statistic over clips (uint8 ``[F, H, W, 3]`` each)."""
    fns = {"luma detail": luma_detail, "colour noise": colour_noise, "frame change": frame_change}
    return {name: round(float(np.mean([fn(c) for c in clips])), 3) for name, fn in fns.items()}


def ratios(generated: dict[str, float], corpus: dict[str, float]) -> dict[str, float]:
    return {k: round(generated[k] / corpus[k], 3) if corpus[k] else float("inf") for k in STATISTICS}


def within(ratio: dict[str, float], factor: float = 1.2) -> bool:
    return all(1 / factor <= r <= factor for r in ratio.values())


@dataclass(frozen=True)
class TwoSampleConfig:
    steps: int = 400
    batch_size: int = 64
    lr: float = 2e-3
    frames_per_clip: int = 8  # frames taken from each clip (evenly spaced)
    seed: int = 0


def _net(size: int = 64):
    """Four conv-BN-ReLU-pool stages and a linear head: generated (1) or corpus (0). Frames larger than
    64 pixels first go through a patch stem (a k x k convolution of stride k, k = size / 64) that reads
    every pixel and hands the stages a 64x64 grid: the stages at 256 pixels took 26 s per training step
    on this CPU, the stem costs about what a 64-pixel frame does."""
    from torch import nn

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

    k = max(1, size // 64)
    stem = [nn.Conv2d(3, 24, k, stride=k), nn.BatchNorm2d(24), nn.ReLU()] if k > 1 else []
    return nn.Sequential(*stem, block(24 if k > 1 else 3, 32), block(32, 64), block(64, 96), block(96, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, 2))


def _frames(clips: list[np.ndarray], per_clip: int) -> list[np.ndarray]:
    out = []
    for clip in clips:
        picks = np.linspace(0, len(clip) - 1, min(per_clip, len(clip))).round().astype(int)
        out.append(clip[picks])
    return out


def split_halves(clips: list, rng: np.random.Generator, labels: list | None = None) -> tuple[list, list]:
    """A random (training, test) split of ``clips``: half the clips, or, with ``labels`` (one per
    clip), half the labels, so that no label has clips on both sides."""
    if labels is None:
        order = rng.permutation(len(clips))
        cut = len(clips) // 2
        return [clips[i] for i in order[:cut]], [clips[i] for i in order[cut:]]
    if len(labels) != len(clips):
        raise ValueError(f"{len(labels)} group labels for {len(clips)} clips")
    names = sorted(set(labels), key=str)
    if len(names) < 2:
        raise ValueError("a split by group needs at least two groups on each side")
    train = {names[i] for i in rng.permutation(len(names))[: len(names) // 2]}
    return [c for c, g in zip(clips, labels) if g in train], [c for c, g in zip(clips, labels) if g not in train]


def two_sample_test(generated: list[np.ndarray], corpus: list[np.ndarray], config: TwoSampleConfig = TwoSampleConfig(),
                    groups: tuple[list, list] | None = None) -> dict:
    """Train on half of each side's clips, test on the other half; returns accuracy and counts.

    Clips are uint8 ``[F, H, W, 3]`` of one size. The halves are split by clip, so frames of a test
    clip were never seen in training; the test set is balanced by subsampling the larger side.
    ``groups``: a label per clip on each side (the person: a call, a corpus speaker); then the halves
    are split by group, so no person of the test half was seen in training. Clips of one person share
    a face, so a split by clip lets the classifier tell the sides apart by who is in them (a handful of
    calls against a handful of speakers) rather than by how the frames look.
    """
    import torch
    import torch.nn.functional as F

    if len(generated) < 2 or len(corpus) < 2:
        raise ValueError("the two-sample test needs at least two clips on each side")
    size = generated[0].shape[1]
    if any(c.shape[1:] != generated[0].shape[1:] for c in [*generated, *corpus]):
        raise ValueError("generated and corpus frames must have one size")
    rng = np.random.default_rng(config.seed)

    gen_groups, cor_groups = groups if groups is not None else (None, None)
    gen_train, gen_test = split_halves(_frames(generated, config.frames_per_clip), rng, gen_groups)
    cor_train, cor_test = split_halves(_frames(corpus, config.frames_per_clip), rng, cor_groups)

    def stack(parts):
        return np.concatenate(parts) if parts else np.zeros((0, size, size, 3), np.uint8)

    def balanced(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = min(len(a), len(b))
        return a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]

    xg, xc = balanced(stack(gen_train), stack(cor_train))
    tg, tc = balanced(stack(gen_test), stack(cor_test))
    x = np.concatenate([xg, xc])
    y = np.concatenate([np.ones(len(xg)), np.zeros(len(xc))]).astype(np.int64)
    torch.manual_seed(config.seed)
    net = _net(size)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)

    def tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)

    net.train()
    for step in range(config.steps):
        idx = rng.integers(0, len(x), size=min(config.batch_size, len(x)))
        loss = F.cross_entropy(net(tensor(x[idx])), torch.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    test = np.concatenate([tg, tc])
    labels = np.concatenate([np.ones(len(tg)), np.zeros(len(tc))])
    with torch.no_grad():
        pred = np.concatenate([net(tensor(test[i : i + 256])).argmax(1).numpy() for i in range(0, len(test), 256)])
    accuracy = float((pred == labels).mean())
    with torch.no_grad():
        train_pred = np.concatenate([net(tensor(x[i : i + 256])).argmax(1).numpy() for i in range(0, len(x), 256)])
    return {
        "accuracy": round(accuracy, 3),
        "train_accuracy": round(float((train_pred == y).mean()), 3),
        "generated_as_generated": round(float(pred[: len(tg)].mean()), 3) if len(tg) else None,
        "corpus_as_corpus": round(float(1 - pred[len(tg) :].mean()), 3) if len(tc) else None,
        "test_frames": int(len(test)),
        "train_frames": int(len(x)),
        "clips": {"generated": len(generated), "corpus": len(corpus)},
        "split": "by group" if groups is not None else "by clip",
        "steps": config.steps,
    }
