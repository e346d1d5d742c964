"""A face-identity judge: is this frame the same person as that one?

The instrument ``textcall eval`` uses to measure "one face per call". It is a small CNN that maps a
64x64 face to a unit 128-d embedding, trained (CosFace: a cosine softmax with an additive margin,
Wang et al. 2018) to tell apart drawn people that no generator ever saw (``textcall corpus stills
--purpose judge``: another speaker seed than the video corpus's and the portrait model's). Two
faces are judged the same person when the cosine of their embeddings reaches ``threshold``, set at
the equal-error point on people held out of the judge's own training. It is never a training loss
of any generator.

Calibration on the corpus (``calibrate``): frames of two different clips of one corpus speaker
(should be "same") and of two different speakers (should be "different"), reported in eval.json.
A call is then judged frame by frame against its first frame (``same_as_first``).

Frames: uint8 ``[N, 64, 64, 3]`` RGB.
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
from model.evaluation.gender import frames_to_tensor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentityConfig:
    image_size: int = 64
    width: int = 32  # channels of the first stage, doubled per stage (capped at 4x)
    embedding: int = 128

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.width < 4 or self.embedding < 8:
            raise ValueError("image_size >= 16, width >= 4 and embedding >= 8")


class IdentityNet(nn.Module):
    """``[B, 3, S, S]`` in [-1, 1] -> unit embeddings ``[B, E]``."""

    def __init__(self, config: IdentityConfig = IdentityConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        chans = [3, w, 2 * w, 4 * w, 4 * w]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans, chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                       nn.Conv2d(cout, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        side = config.image_size // 16
        self.head = nn.Linear(chans[-1] * side * side, config.embedding)  # keeps where things are

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.head(self.features(x).flatten(1)), dim=-1)


@dataclass(frozen=True)
class IdentityTrainConfig:
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    scale: float = 24.0  # CosFace s
    margin: float = 0.25  # CosFace m
    val_people: int = 100  # held out of training: the threshold is set on them
    seed: int = 0


def _augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """What a face on a call may do besides being someone else: shift a little, soften, brighten,
    gain noise (the generator's artefacts)."""
    b = x.shape[0]
    pad = 3
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx, dy = (torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist())
    x = padded[..., dy : dy + x.shape[-2], dx : dx + x.shape[-1]]
    soft = torch.rand(b, generator=gen) < 0.3
    if soft.any():
        kernel = torch.tensor([1.0, 2.0, 1.0]) / 4
        k2 = (kernel[:, None] * kernel[None]).expand(3, 1, 3, 3)
        x = torch.where(soft[:, None, None, None], F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k2, groups=3), x)
    x = x * (1 + 0.08 * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5)) + 0.04 * torch.randn(x.shape, generator=gen) * (
        torch.rand(b, 1, 1, 1, generator=gen) < 0.3)
    return x.clamp(-1, 1)


def _pair_cosines(emb: np.ndarray, person: np.ndarray, rng: np.random.Generator, pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of ``pairs`` same-person and ``pairs`` different-person pairs."""
    same, diff = [], []
    by = {}
    for i, p in enumerate(person.tolist()):
        by.setdefault(p, []).append(i)
    people = [p for p, idx in by.items() if len(idx) > 1]
    for _ in range(pairs):
        p = people[int(rng.integers(len(people)))]
        i, j = rng.choice(by[p], size=2, replace=False)
        same.append(float(emb[i] @ emb[j]))
        i, j = rng.integers(0, len(emb), size=2)
        while person[i] == person[j]:
            j = int(rng.integers(len(emb)))
        diff.append(float(emb[i] @ emb[j]))
    return np.array(same), np.array(diff)


def equal_error_threshold(same: np.ndarray, diff: np.ndarray) -> tuple[float, float]:
    """The cosine where the false-reject and false-accept rates meet, and that rate."""
    grid = np.linspace(-1, 1, 2001)
    frr = np.array([(same < t).mean() for t in grid])
    far = np.array([(diff >= t).mean() for t in grid])
    k = int(np.argmin(np.abs(frr - far)))
    return float(grid[k]), float((frr[k] + far[k]) / 2)


class IdentityJudge:
    """The trained net and its threshold: ``embed``, ``same_as_first``, ``calibrate``."""

    def __init__(self, net: IdentityNet, threshold: float, meta: dict | None = None) -> None:
        self.net = net.eval()
        self.threshold = threshold
        self.meta = dict(meta or {})

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> IdentityJudge:
        folder = Path(folder)
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder} holds no identity judge ({name} missing); train one with `textcall train identity`")
        meta = json.loads((folder / "config.json").read_text())
        net = IdentityNet(IdentityConfig(**meta["net"]))
        net.load_state_dict({k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()})
        return cls(net.to(device), float(meta["threshold"]), meta)

    @torch.no_grad()
    def embed(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` -> float32 ``[N, E]`` unit vectors."""
        x = frames_to_tensor(frames, self.net.config.image_size)
        return np.concatenate([self.net(x[i : i + 256]).numpy() for i in range(0, len(x), 256)]) if len(x) else np.zeros((0, self.net.config.embedding), np.float32)

    def same_as_first(self, frames: np.ndarray) -> np.ndarray:
        """Cosine of every frame's embedding with the first frame's: float ``[N]``."""
        emb = self.embed(frames)
        return emb @ emb[0]

    def calibrate(self, clips: list[np.ndarray], speakers: list[str], *, pairs: int = 2000, seed: int = 0) -> dict:
        """On held-out corpus clips of known speakers: how often two frames of different clips of one
        speaker are judged the same person, and two frames of different speakers are."""
        rng = np.random.default_rng(seed)
        emb = [self.embed(c) for c in clips]
        by: dict[str, list[int]] = {}
        for i, s in enumerate(speakers):
            by.setdefault(s, []).append(i)
        multi = [s for s, idx in by.items() if len(idx) > 1]
        if not multi or len(by) < 2:
            raise ValueError("calibration needs two clips of one speaker and two speakers")
        same, diff = [], []
        for _ in range(pairs):
            s = multi[int(rng.integers(len(multi)))]
            a, b = rng.choice(by[s], size=2, replace=False)
            same.append(float(emb[a][rng.integers(len(emb[a]))] @ emb[b][rng.integers(len(emb[b]))]))
            a, b = rng.integers(0, len(clips), size=2)
            while speakers[a] == speakers[b]:
                b = int(rng.integers(len(clips)))
            diff.append(float(emb[a][rng.integers(len(emb[a]))] @ emb[b][rng.integers(len(emb[b]))]))
        same, diff = np.array(same), np.array(diff)
        return {
            "threshold": round(self.threshold, 3),
            "clips": len(clips), "speakers": len(by), "pairs": pairs,
            "same_speaker_judged_same": round(float((same >= self.threshold).mean()), 4),
            "different_speakers_judged_same": round(float((diff >= self.threshold).mean()), 4),
            "same_speaker_cosine_median": round(float(np.median(same)), 3),
            "different_speakers_cosine_median": round(float(np.median(diff)), 3),
        }


def train_identity(stills_dir: str | Path, out: str | Path, *, config: IdentityConfig = IdentityConfig(),
                   train: IdentityTrainConfig = IdentityTrainConfig(), progress: bool = True) -> dict:
    """Train on a judge stills set; write ``out/model.safetensors`` + ``config.json`` (with the threshold)."""
    from model.corpus.stills import Stills

    began = time.perf_counter()
    stills = Stills.load(stills_dir)
    rng = np.random.default_rng(train.seed)
    people = np.unique(stills.speaker)
    if len(people) <= train.val_people + 1:
        raise ValueError(f"{stills_dir} has {len(people)} people; need more than val_people={train.val_people}")
    val_people = set(rng.choice(people, size=train.val_people, replace=False).tolist())
    is_val = np.array([p in val_people for p in stills.speaker.tolist()])
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    classes = {p: k for k, p in enumerate(sorted(set(stills.speaker[train_idx].tolist())))}
    labels = np.array([classes.get(p, -1) for p in stills.speaker.tolist()], np.int64)

    torch.manual_seed(train.seed)
    gen = torch.Generator().manual_seed(train.seed)
    net = IdentityNet(config)
    weight = nn.Parameter(torch.randn(len(classes), config.embedding) * 0.01)
    opt = torch.optim.AdamW([*net.parameters(), weight], lr=train.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=train.lr, total_steps=train.steps)
    images = stills.images
    net.train()
    for step in tqdm(range(train.steps), desc="identity judge", disable=not progress):
        idx = rng.choice(train_idx, size=train.batch_size)
        x = _augment(frames_to_tensor(images[idx], config.image_size), gen)
        y = torch.from_numpy(labels[idx])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            emb = net(x)
        logits = emb.float() @ F.normalize(weight, dim=-1).T  # cosines [B, K]
        logits = train.scale * (logits - train.margin * F.one_hot(y, len(classes)))
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    judge = IdentityJudge(net, 0.0)
    emb = judge.embed(images[val_idx])
    same, diff = _pair_cosines(emb, stills.speaker[val_idx], rng, 4000)
    threshold, eer = equal_error_threshold(same, diff)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "kind": "identity-judge", "net": asdict(config), "threshold": round(threshold, 4), "train": asdict(train),
        "data": {"stills": str(stills_dir), "people": len(people), "images": len(images), "val_people": train.val_people},
        "val": {"equal_error_rate": round(eer, 4), "same_judged_same": round(float((same >= threshold).mean()), 4),
                "different_judged_same": round(float((diff >= threshold).mean()), 4), "pairs": len(same)},
        "seconds": round(time.perf_counter() - began, 1),
    }
    save_weights(out, net, config=lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"), dtype=torch.float16)
    return meta
