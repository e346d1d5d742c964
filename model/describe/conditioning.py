"""Torch helpers for the networks that read a description vector (``model.describe.attributes``).

Shared by the portrait model and the joint audio-video model (and its noisy classifier):

- ``condition_from_caption_table``: a caption-index network's embedding table -> the weight of the
  linear map over the description vector that reproduces it exactly on the paper's captions;
- ``drop_descriptions``: training-time attribute dropout (and the whole-description dropout that
  classifier-free guidance contrasts with);
- ``value_log_prob``: log p(the described values) under per-attribute logits laid out like the
  vector (a description classifier's guidance term, Eq. 8 with one factor per attribute said);
- ``description_loss``: the cross-entropy of such logits against full descriptions.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from model.describe.attributes import ATTRIBUTES, SLOTS


def gender_captions() -> list[str]:
    """The caption texts of the gender block's slots: "" (not said: the null caption), then the
    paper's caption of each value ("A man is talking", "A woman is talking")."""
    from model.corpus.speakers import CAPTIONS

    return ["", *(CAPTIONS[v] for v in ATTRIBUTES[0].values)]


def condition_from_caption_table(table: Tensor, caption_index: Callable[[str], int]) -> Tensor:
    """``table`` ``[captions, E]`` (an ``nn.Embedding``'s weight, row 0 the null caption) -> the weight
    ``[E, SLOTS]`` of a bias-free ``nn.Linear(SLOTS, E)`` that gives, for the one-hot vector of a
    gender (or of nothing said), exactly the table's row of that gender's caption (or the null row).

    Every other attribute's columns start at zero: until trained, the network ignores them."""
    weight = torch.zeros(table.shape[1], SLOTS, dtype=table.dtype)
    for slot, text in enumerate(gender_captions()):  # the gender block is the vector's first
        weight[:, slot] = table[caption_index(text)]
    return weight


def _block_layout(device) -> tuple[Tensor, Tensor]:
    sizes = torch.tensor([a.slots for a in ATTRIBUTES], device=device)
    first = torch.zeros(SLOTS, device=device)
    first[torch.cumsum(sizes, 0) - sizes] = 1.0  # each block's "not said" slot
    return sizes, first


def drop_descriptions(vec: Tensor, attribute_p: float, all_p: float, gen: torch.Generator) -> Tensor:
    """Leave each attribute "not said" with chance ``attribute_p`` and the whole description with
    ``all_p`` (the null vector classifier-free guidance contrasts with). ``vec`` ``[B, SLOTS]``."""
    b = vec.shape[0]
    sizes, first = _block_layout(vec.device)
    drop = torch.rand(b, len(ATTRIBUTES), generator=gen, device=vec.device) < attribute_p
    drop |= torch.rand(b, 1, generator=gen, device=vec.device) < all_p
    drop_slots = drop.to(vec.dtype).repeat_interleave(sizes, dim=1)  # [B, SLOTS]
    return vec * (1 - drop_slots) + drop_slots * first.to(vec.dtype)


def null_descriptions(like: Tensor) -> Tensor:
    """The null vector (every attribute "not said"), shaped and typed like ``like`` ``[B, SLOTS]``."""
    _, first = _block_layout(like.device)
    return first.to(like.dtype).expand_as(like).clone()


def _value_blocks(logits: Tensor, vec: Tensor):
    """Per attribute: (log-softmax over its values ``[B, V]``, the vector's value slots ``[B, V]``)."""
    at = 0
    for attr in ATTRIBUTES:
        values = slice(at + 1, at + attr.slots)  # the block without its "not said" slot
        yield F.log_softmax(logits[:, values].float(), dim=-1), vec[:, values].float()
        at += attr.slots


def value_log_prob(logits: Tensor, vec: Tensor) -> Tensor:
    """log p(described values) ``[B]``: the sum over attributes of the log-probability of each value
    ``vec`` says (a block at "not said" adds nothing). ``logits``, ``vec``: ``[B, SLOTS]``."""
    return sum((lp * onehot).sum(-1) for lp, onehot in _value_blocks(logits, vec))


def description_loss(logits: Tensor, vec: Tensor) -> tuple[Tensor, Tensor]:
    """(mean cross-entropy per said attribute, accuracy over the said attributes) of per-attribute
    ``logits`` against descriptions ``vec`` (``[B, SLOTS]``; attributes not said are left out)."""
    total, count, right = logits.new_zeros(()).float(), 0.0, 0.0
    for lp, onehot in _value_blocks(logits, vec):
        known = onehot.sum(-1)  # [B]: 1 where this attribute is said
        total = total - (lp * onehot).sum()
        count += float(known.sum())
        right += float(((lp.argmax(-1) == onehot.argmax(-1)).float() * known).sum())
    count = max(count, 1.0)
    return total / count, torch.tensor(right / count)
