"""The attribute judge: one small CNN with a head per attribute, the instrument that measures
whether a face shows what its caption said (``textcall eval captions``).

Trained on the judge stills (``textcall corpus stills --purpose judge``: people no generator saw, in
varied poses and expressions), the last tenth of their people held out to measure the judge
itself; also scored on the video corpus's test frames, whose 24 speakers are known to the
synthesizer (``make_speakers``). Never a generator's loss. Frames uint8 ``[N, 64, 64, 3]`` RGB.
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
from model.describe.attributes import ATTRIBUTES, corpus_people, labels_of
from model.evaluation.gender import _augment, frames_to_tensor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeConfig:
    image_size: int = 64
    width: int = 24

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.width < 4:
            raise ValueError("image_size must be >= 16 and width >= 4")


class JudgeNet(nn.Module):
    """Four strided conv stages, global average pool, one linear head per attribute (its values)."""

    def __init__(self, config: JudgeConfig = JudgeConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        chans = [3, w, 2 * w, 4 * w, 4 * w]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans, chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(min(8, cout), cout), nn.SiLU(),
                       nn.Conv2d(cout, cout, 3, stride=2, padding=1), nn.GroupNorm(min(8, cout), cout), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(chans[-1], len(a.values)) for a in ATTRIBUTES)

    def forward(self, x: Tensor) -> list[Tensor]:
        h = self.features(x).mean(dim=(2, 3))
        return [head(h) for head in self.heads]


def label_array(people: list[dict]) -> np.ndarray:
    """``[N, A]`` value index per attribute."""
    return np.array([[a.values.index(p[a.name]) for a in ATTRIBUTES] for p in people], np.int64)


class AttributeJudge:
    def __init__(self, net: JudgeNet, meta: dict | None = None) -> None:
        self.net = net.eval()
        self.meta = meta or {}

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> AttributeJudge:
        folder = Path(folder)
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder} has no {name}; train the judge with `textcall train attributes`")
        meta = json.loads((folder / "config.json").read_text())
        if [tuple(a) for a in meta.get("attributes", [])] != [(a.name, *a.values) for a in ATTRIBUTES]:
            raise ValueError(f"{folder}: the judge was trained for other attributes than this code's")
        net = JudgeNet(JudgeConfig(**meta["judge"]))
        net.load_state_dict(load_file(str(folder / "model.safetensors")))
        return cls(net.to(device), meta)

    @torch.no_grad()
    def probabilities(self, frames: np.ndarray) -> list[np.ndarray]:
        """Per attribute ``[N, values]``."""
        device = next(self.net.parameters()).device
        parts: list[list[np.ndarray]] = [[] for _ in ATTRIBUTES]
        for i in range(0, len(frames), 256):
            x = frames_to_tensor(frames[i:i + 256], self.net.config.image_size).to(device)
            for k, logits in enumerate(self.net(x)):
                parts[k].append(logits.softmax(-1).cpu().numpy())
        return [np.concatenate(p) if p else np.zeros((0, len(a.values))) for p, a in zip(parts, ATTRIBUTES)]

    def predict(self, frames: np.ndarray) -> list[dict[str, str]]:
        probs = self.probabilities(frames)
        return [{a.name: a.values[int(probs[k][i].argmax())] for k, a in enumerate(ATTRIBUTES)} for i in range(len(frames))]


def adherence(judged: list[dict[str, str]], wanted: list[dict[str, str | None]]) -> dict[str, dict]:
    """Per attribute: how many faces were asked for a value of it, and the share judged to show it."""
    out = {}
    for a in ATTRIBUTES:
        pairs = [(j[a.name], w[a.name]) for j, w in zip(judged, wanted) if w.get(a.name) is not None]
        if pairs:
            out[a.name] = {"asked": len(pairs), "adherence": round(float(np.mean([j == w for j, w in pairs])), 4)}
    return out


@dataclass(frozen=True)
class JudgeTrainConfig:
    steps: int = 2500
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    test_share: float = 0.1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or not 0 < self.test_share < 1:
            raise ValueError("steps, batch_size and lr must be positive, test_share in (0, 1)")


def train_judge(stills: str | Path, out: str | Path, *, cache: str | Path | None = None, corpus: str | Path | None = None,
                config: JudgeConfig = JudgeConfig(), train: JudgeTrainConfig = JudgeTrainConfig(), progress: bool = True) -> dict:
    """Train on the judge stills (their last ``test_share`` of people held out and scored); with
    ``cache`` and ``corpus`` also score the video corpus's test frames. Writes ``out``; returns metrics."""
    from model.corpus.stills import Stills

    out = Path(out)
    torch.manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    data = Stills.load(stills)
    people = label_array([labels_of(p["look"], p["gender"]) for p in data.speakers])
    labels = people[data.speaker]
    ids = np.unique(data.speaker)
    test_ids = ids[len(ids) - max(1, int(round(train.test_share * len(ids)))):]
    is_test = np.isin(data.speaker, test_ids)
    x_train, y_train = data.images[~is_test], labels[~is_test]
    # each attribute's classes weighted by inverse frequency (red hair and glasses are rarer than brown and none)
    weights = [torch.tensor(1.0 / np.maximum(np.bincount(y_train[:, k], minlength=len(a.values)), 1) * len(y_train) / len(a.values),
                            dtype=torch.float32).clamp(max=10) for k, a in enumerate(ATTRIBUTES)]
    net = JudgeNet(config)
    opt = torch.optim.AdamW(net.parameters(), lr=train.lr, weight_decay=1e-4)
    start = time.perf_counter()
    bar = tqdm(range(train.steps), desc="attribute judge", disable=not progress, dynamic_ncols=True)
    for step in bar:
        idx = rng.integers(0, len(x_train), train.batch_size)
        x = _augment(frames_to_tensor(x_train[idx], config.image_size), rng)
        y = torch.from_numpy(y_train[idx])
        loss = sum(F.cross_entropy(lg, y[:, k], weight=weights[k]) for k, lg in enumerate(net(x))) / len(ATTRIBUTES)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for group in opt.param_groups:
            group["lr"] = train.lr * (1 - (step + 1) / train.steps)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    judge = AttributeJudge(net)
    metrics: dict = {"steps": train.steps, "seconds": round(time.perf_counter() - start, 1),
                     "heldout_people": int(len(test_ids)), "heldout_images": int(is_test.sum())}
    metrics["heldout_accuracy"] = accuracy(judge, data.images[is_test], labels[is_test])
    if cache is not None and corpus is not None:
        frames, speakers = corpus_test_frames(cache)
        table = corpus_people(corpus)
        known = np.array([s in table for s in speakers])
        pick = rng.choice(np.flatnonzero(known), size=min(4000, int(known.sum())), replace=False)
        metrics["corpus_test_frames"] = int(len(pick))
        metrics["corpus_accuracy"] = accuracy(judge, frames[pick], label_array([table[s] for s in speakers[pick]]))
    meta = {"kind": "attribute-judge", "judge": asdict(config), "attributes": [[a.name, *a.values] for a in ATTRIBUTES],
            "train": asdict(train), "data": {"stills": str(stills), "cache": str(cache) if cache else None}, "metrics": metrics}
    save_weights(out, net, config=lambda p: p.write_text(json.dumps(meta, indent=2)))
    (out / "README.md").write_text(_card(meta))
    return metrics


def accuracy(judge: AttributeJudge, frames: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    probs = judge.probabilities(frames)
    return {a.name: round(float((probs[k].argmax(1) == labels[:, k]).mean()), 4) for k, a in enumerate(ATTRIBUTES)}


def corpus_test_frames(cache: str | Path) -> tuple[np.ndarray, np.ndarray]:
    from model.evaluation.gender import corpus_frames

    frames, _, speakers = corpus_frames(cache, "test")
    return frames, speakers


def _card(meta: dict) -> str:
    m = meta["metrics"]
    rows = "\n".join(f"| {a.name} | {m['heldout_accuracy'][a.name]:.3f} | "
                     + (f"{m['corpus_accuracy'][a.name]:.3f}" if "corpus_accuracy" in m else "-") + " |" for a in ATTRIBUTES)
    return (
        "# attribute judge (evaluation instrument)\n\n"
        "- purpose: caption adherence in `textcall eval captions` (does 'a woman with red hair and glasses' show one?)\n"
        f"- data: judge stills `{meta['data']['stills']}` (people no generator saw); the last tenth of their people held out\n"
        f"- architecture: 4 conv stages (width {meta['judge']['width']}), one linear head per attribute\n"
        f"- training: {meta['train']['steps']} steps, batch {meta['train']['batch_size']}, AdamW lr {meta['train']['lr']} "
        f"linear decay, class-balanced, {m['seconds']} s on CPU\n"
        f"- measured: accuracy on {m['heldout_images']} portraits of {m['heldout_people']} held-out people, and on "
        f"{m.get('corpus_test_frames', 0)} video-corpus test frames (its 24 speakers):\n\n"
        "| attribute | held-out people | corpus test frames |\n|---|---|---|\n" + rows + "\n\n"
        "- limits: knows only the synthesizer's drawn faces; facial hair is judged on women too (always 'none')\n"
    )
