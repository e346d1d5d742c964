"""The caption encoder: any English caption -> a description vector (``model.describe.attributes``).

No pretrained English text encoder ships inside a PyPI package that this project can install and
use offline at a size that fits (the spaCy pipelines on PyPI are unofficial mirrors; fastText
packages ship bindings, not vectors), so the encoder is trained here on the caption corpus
(``model.describe.wording``: the synthesizer's attributes in many wordings). Architecture: word
embeddings (lower-cased letters; hyphenated words split), a one-layer bidirectional GRU, and per
attribute a linear head scoring each value at every known word, max-pooled over the words; class 0
"not said" is one learned logit per attribute that no word can raise, so a word with no gender ("the
speaker is a woman") cannot outvote one that has it. The vector is the per-attribute softmax
probabilities over ``1 + values`` classes, concatenated.

Words outside the vocabulary are read as one unknown token (training replaces words by it at
random, so the encoder learns to pass over them) and listed in ``Reading.unknown`` for the render
log: an unknown word is a note, never an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from model.describe.attributes import ATTRIBUTES, SLOTS, description_of, null_vector

PAD, UNK = 0, 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"
_WORD = re.compile(r"[a-z]+")
MAX_WORDS = 48


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())[:MAX_WORDS]


@dataclass(frozen=True)
class EncoderConfig:
    vocab: tuple[str, ...]  # index 0 pad, 1 unknown
    embed: int = 48
    hidden: int = 64
    slots: int = SLOTS
    attributes: tuple[tuple[str, int], ...] = tuple((a.name, a.slots) for a in ATTRIBUTES)

    def to_dict(self) -> dict:
        return {"kind": "caption-encoder", "embed": self.embed, "hidden": self.hidden, "slots": self.slots,
                "attributes": [list(a) for a in self.attributes], "vocab": list(self.vocab)}

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        if data.get("kind") != "caption-encoder":
            raise ValueError(f"not a caption encoder's config (kind {data.get('kind')!r})")
        return cls(vocab=tuple(data["vocab"]), embed=int(data["embed"]), hidden=int(data["hidden"]), slots=int(data["slots"]),
                   attributes=tuple((str(n), int(k)) for n, k in data["attributes"]))


class EncoderNet(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(len(cfg.vocab), cfg.embed, padding_idx=PAD)
        self.gru = nn.GRU(cfg.embed, cfg.hidden, batch_first=True, bidirectional=True)
        self.heads = nn.ModuleList(nn.Linear(2 * cfg.hidden, k - 1) for _, k in cfg.attributes)
        self.unsaid = nn.Parameter(torch.zeros(len(cfg.attributes)))

    def forward(self, tokens: Tensor) -> list[Tensor]:
        """tokens long ``[B, L]`` (0-padded) -> per attribute logits ``[B, 1 + values]``."""
        states, _ = self.gru(self.embed(tokens))  # [B, L, 2H]
        mask = (tokens != PAD) & (tokens != UNK)  # an unknown word gives context to its neighbours, never evidence
        out = []
        for k, head in enumerate(self.heads):
            scores = head(states).masked_fill(~mask[..., None], -1e4).amax(dim=1)  # [B, values]
            out.append(torch.cat([self.unsaid[k].expand(len(scores), 1), scores], dim=1))
        return out

    def vector(self, tokens: Tensor) -> Tensor:
        return torch.cat([logits.softmax(dim=-1) for logits in self(tokens)], dim=-1)


@dataclass(frozen=True)
class Reading:
    """What the encoder read in one caption."""

    text: str
    vector: np.ndarray  # float32 [SLOTS], probabilities per block
    description: dict[str, str | None]
    unknown: tuple[str, ...] = field(default=())

    def said(self) -> dict[str, str]:
        return {k: v for k, v in self.description.items() if v is not None}


class CaptionEncoder:
    def __init__(self, net: EncoderNet) -> None:
        self.net = net.eval()
        self.index = {w: i for i, w in enumerate(net.cfg.vocab)}

    def tokens(self, texts: list[str]) -> tuple[Tensor, list[tuple[str, ...]]]:
        rows, unknown = [], []
        for text in texts:
            ws = words(text)
            rows.append([self.index.get(w, UNK) for w in ws] or [UNK])
            unknown.append(tuple(dict.fromkeys(w for w in ws if w not in self.index)))
        out = torch.zeros((len(rows), max(map(len, rows))), dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.tensor(row)
        return out, unknown

    @torch.no_grad()
    def read(self, texts: list[str] | str) -> list[Reading] | Reading:
        """Caption(s) -> ``Reading``(s). A caption with no known word reads as "nothing said" without
        running the net (its words listed as unknown)."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        out: list[Reading | None] = [None] * len(batch)
        todo = [i for i, t in enumerate(batch) if any(w in self.index for w in words(t))]
        nothing = null_vector()
        for i in sorted(set(range(len(batch))) - set(todo)):
            out[i] = Reading(batch[i], nothing, description_of(nothing), tuple(dict.fromkeys(words(batch[i]))))
        if todo:
            tokens, unknown = self.tokens([batch[i] for i in todo])
            vecs = self.net.vector(tokens).numpy().astype(np.float32)
            for k, i in enumerate(todo):
                out[i] = Reading(batch[i], vecs[k], description_of(vecs[k]), unknown[k])
        return out[0] if single else out  # type: ignore[return-value]

    def save(self, folder: str | Path, meta: dict | None = None) -> Path:
        from model.checkpoint import save_weights

        cfg = self.net.cfg
        return save_weights(folder, self.net.state_dict(), config=lambda p: Path(p).write_text(json.dumps(cfg.to_dict()) + "\n"),
                            metadata={"kind": "caption-encoder", **(meta or {})})

    @classmethod
    def load(cls, folder: str | Path) -> CaptionEncoder:
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
            raise FileNotFoundError(f"{folder} holds no caption encoder ({WEIGHTS} + {CONFIG}); train one with "
                                    "`textcall train captions`")
        cfg = EncoderConfig.from_dict(json.loads((folder / CONFIG).read_text()))
        if cfg.slots != SLOTS or cfg.attributes != tuple((a.name, a.slots) for a in ATTRIBUTES):
            raise ValueError(f"{folder}: the encoder was trained for other attributes than this code's")
        net = EncoderNet(cfg)
        net.load_state_dict({k: v.float() for k, v in load_file(str(folder / WEIGHTS)).items()})
        return cls(net)
