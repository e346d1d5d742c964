"""A face-gender classifier trained on real corpus frames: the instrument ``textcall eval`` uses to
measure caption adherence ("A woman is talking" must produce a woman).

It is deliberately separate from the diffusion model's noisy classifier (which sees noisy joint
video-audio pairs and serves classifier guidance): this one sees clean single frames only, so it
judges generated frames the way a person looking at them would, without sharing the generator's
weights or biases.

Frames: uint8 ``[N, 64, 64, 3]`` RGB. Classes: 0 = male, 1 = female (``GENDERS``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from model.checkpoint import save_weights

logger = logging.getLogger(__name__)

GENDERS = ("male", "female")


@dataclass(frozen=True)
class GenderConfig:
    image_size: int = 64
    width: int = 16  # channels of the first conv; doubled per stage

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.width < 4:
            raise ValueError("image_size must be >= 16 and width >= 4")


class GenderNet(nn.Module):
    """Four strided conv stages, global average pool, linear: ``[B, 3, S, S]`` in [-1, 1] -> logits ``[B, 2]``."""

    def __init__(self, config: GenderConfig = GenderConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        chans = [3, w, 2 * w, 4 * w, 4 * w]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans, chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(min(8, cout), cout), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], len(GENDERS))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def frames_to_tensor(frames: np.ndarray, size: int) -> Tensor:
    """uint8 ``[N, H, W, 3]`` -> float ``[N, 3, size, size]`` in [-1, 1]."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x


class GenderClassifier:
    """The trained net behind two verbs: ``probabilities(frames)`` and ``predict(frames)``."""

    def __init__(self, net: GenderNet) -> None:
        self.net = net.eval()

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> GenderClassifier:
        folder = Path(folder)
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder} has no {name} (a gender classifier folder needs both)")
        config = GenderConfig(**json.loads((folder / "config.json").read_text())["gender"])
        net = GenderNet(config)
        net.load_state_dict(load_file(str(folder / "model.safetensors")))
        return cls(net.to(device))

    @torch.no_grad()
    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` -> ``[N, 2]`` (male, female)."""
        device = next(self.net.parameters()).device
        out = []
        for i in range(0, len(frames), 256):
            x = frames_to_tensor(frames[i : i + 256], self.net.config.image_size).to(device)
            out.append(self.net(x).softmax(-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 2), np.float32)

    def predict_clip(self, frames: np.ndarray) -> str:
        """The gender a clip shows: the class with the higher mean probability over its frames."""
        return GENDERS[int(self.probabilities(frames).mean(0).argmax())]


@dataclass(frozen=True)
class GenderTrainConfig:
    steps: int = 400
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size and lr must be positive")


def corpus_frames(cache: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames uint8 ``[N*F, 64, 64, 3]``, labels ``[N*F]``, speaker per frame) of a cached split."""
    from model.corpus.cache import SegmentCache

    segments = SegmentCache(cache, split)
    video, _, captions = segments.arrays()
    labels = np.array([_label(c) for c in captions])
    keep = labels >= 0
    video = np.asarray(video[keep])  # [N, F, 3, H, W]
    n, f = video.shape[:2]
    frames = video.transpose(0, 1, 3, 4, 2).reshape(n * f, *video.shape[3:], 3)
    speakers = np.repeat(segments.speakers()[keep], f)
    return frames, np.repeat(labels[keep], f), speakers


def _label(caption: str) -> int:
    words = caption.lower().split()
    if "woman" in words:
        return 1
    if "man" in words:
        return 0
    return -1


def stills_split(stills: str | Path, test_share: float = 0.1) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, test) (images, labels) of a stills folder, split by person: the last ``test_share`` of
    its people are the test people."""
    from model.corpus.stills import Stills

    data = Stills.load(stills)
    people = np.unique(data.speaker)
    test_people = people[len(people) - max(1, int(round(test_share * len(people)))):]
    is_test = np.isin(data.speaker, test_people)
    labels = data.gender.astype(np.int64)
    return (data.images[~is_test], labels[~is_test]), (data.images[is_test], labels[is_test])


def train_gender(
    cache: str | Path,
    out: str | Path,
    *,
    stills: str | Path | None = None,
    config: GenderConfig = GenderConfig(),
    train: GenderTrainConfig = GenderTrainConfig(),
    progress: bool = True,
) -> dict:
    """Train on the cache's train split and, with ``stills`` (a judge stills folder: many people no
    generator saw), on those portraits too, half of each batch; measure on the cache's test split and
    on the stills' held-out people; write ``out``; returns metrics."""
    out = Path(out)
    torch.manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    frames, labels, _ = corpus_frames(cache, "train")
    test_frames, test_labels, _ = corpus_frames(cache, "test")
    if len(np.unique(labels)) < 2:
        raise ValueError(f"{cache} has frames of one gender only; the classifier needs both")
    pools = [(frames, labels)]
    stills_test = None
    if stills is not None:
        stills_train, stills_test = stills_split(stills)
        if len(np.unique(stills_train[1])) < 2:
            raise ValueError(f"{stills} has portraits of one gender only; the classifier needs both")
        pools.append(stills_train)
    net = GenderNet(config)
    opt = torch.optim.AdamW(net.parameters(), lr=train.lr, weight_decay=1e-4)
    start = time.perf_counter()
    bar = tqdm(range(train.steps), desc="gender", disable=not progress)
    for step in bar:
        xs, ys = [], []
        for k, (images, targets) in enumerate(pools):
            n = train.batch_size // len(pools) + (k < train.batch_size % len(pools))
            idx = rng.integers(0, len(images), n)
            xs.append(frames_to_tensor(images[idx], config.image_size))
            ys.append(torch.from_numpy(targets[idx]).long())
        loss = F.cross_entropy(net(_augment(torch.cat(xs), rng)), torch.cat(ys))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for group in opt.param_groups:
            group["lr"] = train.lr * (1 - (step + 1) / train.steps)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - start
    classifier = GenderClassifier(net)
    pick = rng.choice(len(test_frames), size=min(4000, len(test_frames)), replace=False)
    accuracy = float((classifier.probabilities(test_frames[pick]).argmax(1) == test_labels[pick]).mean())
    metrics = {"steps": train.steps, "seconds": round(seconds, 1), "test_frame_accuracy": round(accuracy, 4),
               "test_frames": int(len(pick))}
    if stills_test is not None:
        predicted = classifier.probabilities(stills_test[0]).argmax(1)
        metrics["stills_test_accuracy"] = round(float((predicted == stills_test[1]).mean()), 4)
        for g, name in enumerate(GENDERS):
            metrics[f"stills_test_accuracy_{name}"] = round(float((predicted[stills_test[1] == g] == g).mean()), 4)
        metrics["stills_test_images"] = int(len(predicted))
    meta = {"kind": "gender", "gender": asdict(config), "classes": GENDERS, "train": asdict(train),
            "data": {"cache": str(cache), "stills": str(stills) if stills else None}, "metrics": metrics}
    save_weights(out, net, config=lambda p: p.write_text(json.dumps(meta, indent=2)))
    (out / "README.md").write_text(_card(cache, stills, config, train, metrics))
    logger.info("gender classifier: %s", metrics)
    return metrics


def _augment(x: Tensor, rng: np.random.Generator) -> Tensor:
    """Small shifts, brightness, softness and noise, so generated frames (slightly off the corpus) are
    judged fairly."""
    dx, dy = (int(v) for v in rng.integers(-3, 4, size=2))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if rng.random() < 0.5:  # a soft frame, as a sampled one often is
        x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = x * float(rng.uniform(0.85, 1.15)) + float(rng.uniform(-0.1, 0.1))
    return (x + 0.05 * torch.randn_like(x)).clamp(-1, 1)


def _card(cache, stills, config: GenderConfig, train: GenderTrainConfig, metrics: dict) -> str:
    data = f"clean frames of the synthetic corpus cache `{cache}` (train split), labels from the captions"
    measured = f"frame accuracy {metrics['test_frame_accuracy']:.4f} on {metrics['test_frames']} test-split corpus frames"
    if stills is not None:
        data += (f"; and, half of each batch, the judge stills `{stills}` (people no generator saw; the last tenth "
                 "of them held out)")
        measured += (f"; {metrics['stills_test_accuracy']:.4f} on {metrics['stills_test_images']} portraits of held-out "
                     f"people (male {metrics['stills_test_accuracy_male']:.4f}, female {metrics['stills_test_accuracy_female']:.4f})")
    return (
        "# textcall face-gender classifier (evaluation instrument)\n\n"
        f"- purpose: caption adherence in `textcall eval` (does 'A woman is talking' show a woman?)\n"
        f"- data: {data}\n"
        f"- architecture: 4 strided conv stages, width {config.width}, {config.image_size}x{config.image_size} input\n"
        f"- training: {train.steps} steps, batch {train.batch_size}, AdamW lr {train.lr} linear decay, "
        f"{metrics['seconds']} s on CPU\n"
        f"- measured: {measured}\n"
        "- limits: knows only the synthesizer's drawn faces; a judge for this generator, not for real people\n"
    )
