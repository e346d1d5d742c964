"""Training the caption encoder (``textcall train captions``) on generated captions; minutes on a CPU.

Captions come from ``model.describe.wording`` (train frames, people whose attribute combination is
not held out); the held-out set (other frames, held-out combinations) is scored at every save:
per-attribute accuracy over all 1 + values classes (so "not said" must be read as such too) and the
share of captions read exactly. Words are replaced by the unknown token at random (``word_dropout``)
and unknown tokens inserted, so that words outside the vocabulary are passed over.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from model.describe.attributes import ATTRIBUTES
from model.describe.encoder import PAD, UNK, CaptionEncoder, EncoderConfig, EncoderNet, words
from model.describe.wording import caption_corpus, random_people

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderTrainConfig:
    steps: int = 3000
    batch_size: int = 128
    lr: float = 3e-3
    captions: int = 60_000
    heldout: int = 2_000
    word_dropout: float = 0.05
    insert_unknown: float = 0.2
    embed: int = 48
    hidden: int = 64
    save_every: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.captions, self.heldout, self.save_every) < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size, captions, heldout, save_every and lr must be positive")


def labels_tensor(descriptions: list[dict]) -> torch.Tensor:
    """``[N, A]`` class per attribute (0 = not said)."""
    return torch.tensor([[0 if d.get(a.name) is None else 1 + a.values.index(d[a.name]) for a in ATTRIBUTES]
                         for d in descriptions], dtype=torch.long)


def encode_words(rows: list[list[str]], index: dict[str, int]) -> torch.Tensor:
    out = torch.full((len(rows), max(1, max(map(len, rows)))), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        ids = [index.get(w, UNK) for w in row] or [UNK]
        out[i, :len(ids)] = torch.tensor(ids)
    return out


@torch.no_grad()
def score(encoder: CaptionEncoder, captions: list[tuple[str, dict]]) -> dict[str, float]:
    """Held-out accuracy per attribute (all classes) and the exact-read share."""
    readings = encoder.read([t for t, _ in captions])
    truth = labels_tensor([d for _, d in captions])
    got = labels_tensor([r.description for r in readings])
    out = {f"acc_{a.name}": float((got[:, k] == truth[:, k]).float().mean()) for k, a in enumerate(ATTRIBUTES)}
    out["exact"] = float((got == truth).all(dim=1).float().mean())
    return out


def train_encoder(train: EncoderTrainConfig, out_dir: str | Path, progress: bool = True) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(train.seed)
    people = random_people(20_000, train.seed)
    corpus = caption_corpus(people, train.captions, train.seed + 1, "train")
    heldout = caption_corpus(people, train.heldout, train.seed + 2, "heldout")
    vocab = ("<pad>", "<unk>", *sorted({w for text, _ in corpus for w in words(text)}))
    cfg = EncoderConfig(vocab=vocab, embed=train.embed, hidden=train.hidden)
    net = EncoderNet(cfg)
    index = {w: i for i, w in enumerate(vocab)}
    rows = [words(t) for t, _ in corpus]
    labels = labels_tensor([d for _, d in corpus])
    optimizer = torch.optim.AdamW(net.parameters(), lr=train.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=train.lr, total_steps=train.steps, pct_start=0.1)
    rng = np.random.default_rng(train.seed)
    log_path = out / "loss.csv"
    with open(log_path, "w", newline="") as fh:
        csv.writer(fh).writerow(["step", "loss", *(f"acc_{a.name}" for a in ATTRIBUTES), "exact"])
    bar = tqdm(range(train.steps), desc="train caption encoder", disable=not progress, dynamic_ncols=True)
    last: dict = {}
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in bar:
        idx = rng.integers(0, len(rows), train.batch_size)
        batch = []
        for i in idx:
            row = [w if rng.random() >= train.word_dropout else "<unk>" for w in rows[i]]
            if rng.random() < train.insert_unknown:
                row.insert(int(rng.integers(len(row) + 1)), "<unk>")
            batch.append(row)
        for j in np.flatnonzero(rng.random(len(idx)) < 0.02):  # filler alone ("hello there") says nothing
            batch[j] = ["<unk>"] * int(rng.integers(1, 4))
        target = labels[idx].clone()
        target[[len(b) and all(w == "<unk>" for w in b) for b in batch]] = 0
        tokens = encode_words(batch, index)
        logits = net(tokens)
        loss = sum(F.cross_entropy(lg, target[:, k]) for k, lg in enumerate(logits)) / len(logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        sched.step()
        losses.append(loss.item())
        done = step + 1
        if done % train.save_every == 0 or done == train.steps:
            net.eval()
            encoder = CaptionEncoder(net)
            last = {"step": done, "loss": float(np.mean(losses)), **score(encoder, heldout)}
            losses.clear()
            with open(log_path, "a", newline="") as fh:
                csv.writer(fh).writerow([done, *(f"{v:.5f}" for k, v in last.items() if k != "step")])
            encoder.save(out, {"step": str(done)})
            net.train()
            bar.set_postfix(loss=f"{last['loss']:.3f}", exact=f"{last['exact']:.3f}")
    _write_card(out, train, last, len(vocab), len(corpus), len(heldout), time.perf_counter() - t0)
    return last


def _write_card(out: Path, train: EncoderTrainConfig, last: dict, vocab: int, n_train: int, n_heldout: int, seconds: float) -> None:
    params = sum(p.numel() for p in EncoderNet(EncoderConfig(vocab=("a",) * vocab, embed=train.embed, hidden=train.hidden)).parameters())
    rows = "\n".join(f"| {a.name} | {last.get('acc_' + a.name, float('nan')):.3f} |" for a in ATTRIBUTES)
    (out / "README.md").write_text(
        "# caption encoder: any English caption -> a description vector\n\n"
        f"- what: word embeddings ({vocab} words), a bidirectional GRU, one head per attribute scoring each value at every known word, max-pooled "
        f"({params:,} parameters); reads `model.describe.attributes`' {len(ATTRIBUTES)} attributes, each possibly not said\n"
        f"- data: {n_train:,} generated captions (`model.describe.wording`, train frames, people drawn uniformly "
        "over attribute values, held-out (gender, hair, skin, glasses) combinations left out)\n"
        f"- training: {last.get('step', 0)} steps, batch {train.batch_size}, AdamW one-cycle lr {train.lr:g}, word dropout "
        f"{train.word_dropout:g}, unknown-word insertion {train.insert_unknown:g}, seed {train.seed}; {seconds / 60:.1f} min on this CPU\n"
        f"- held out ({n_heldout:,} captions: sentence frames and attribute combinations never in training): "
        f"read exactly {last.get('exact', float('nan')):.3f}; per attribute, all classes incl. \"not said\":\n\n"
        "| attribute | accuracy |\n|---|---|\n" + rows + "\n\n"
        "- limits: English; held-out captions share the training vocabulary (new sentence frames and combinations, not new words); only the words of the caption corpus are known (others are passed over and "
        "noted); the attributes are the synthetic corpus's\n"
        f"- config: `{', '.join(f'{k}={v}' for k, v in asdict(train).items())}`\n"
    )

