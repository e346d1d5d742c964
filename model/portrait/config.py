"""Typed, frozen configuration of the portrait model; it travels with the weights as ``config.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from model.diffusion.config import DEFAULT_CAPTIONS, PREDICTIONS, ScheduleConfig, _build, caption_index


@dataclass(frozen=True)
class PortraitConfig:
    """A 2-D U-Net over one RGB image ``[B, 3, S, S]`` in [-1, 1], conditioned on a caption index.

    The image enters through a ``patch`` x ``patch`` pixel-unshuffle (lossless, as the joint model's
    ``video_patch``); level ``l`` runs at ``S / patch / 2**l`` with ``base_channels *
    channel_mult[l]`` channels; self-attention runs at the levels in ``attention_levels`` and in the
    middle. Same linear schedule, caption vocabulary and v target as the joint model's ``small``.
    """

    image_size: int = 64
    patch: int = 2
    base_channels: int = 48
    channel_mult: tuple[int, ...] = (1, 2, 3)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (2,)
    head_channels: int = 48
    norm_groups: int = 16
    dropout: float = 0.0
    captions: tuple[str, ...] = DEFAULT_CAPTIONS
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    prediction: str = "v"
    name: str = "portrait"
    # 0: conditioned on a caption index (the paper's two captions); > 0: on a description vector of
    # this many slots (``model.describe.attributes``: free-form captions, issue 30)
    attribute_slots: int = 0

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if not self.channel_mult or self.num_res_blocks < 1:
            raise ValueError("need at least one level and one residual block per level")
        side = self.image_size // self.patch
        if self.image_size % self.patch or side % (2 ** (len(self.channel_mult) - 1)):
            raise ValueError(f"image_size {self.image_size} / patch {self.patch} cannot be halved {len(self.channel_mult) - 1} times")
        if any(not 0 <= lvl < len(self.channel_mult) for lvl in self.attention_levels):
            raise ValueError("attention_levels must name levels of channel_mult")
        for mult in self.channel_mult:
            if (self.base_channels * mult) % self.norm_groups:
                raise ValueError(f"{self.base_channels * mult} channels do not split into {self.norm_groups} groups")
        if self.attribute_slots < 0:
            raise ValueError("attribute_slots must be >= 0")
        if not self.captions or self.captions[0] != "":
            raise ValueError("caption 0 must be the empty (null) caption")

    @property
    def emb_channels(self) -> int:
        return 4 * self.base_channels

    def channels(self, level: int) -> int:
        return self.base_channels * self.channel_mult[level]

    @property
    def describes(self) -> bool:
        """Conditioned on a description vector (free-form captions) rather than a caption index."""
        return self.attribute_slots > 0

    def caption_index(self, text: str) -> int:
        return caption_index(text, self.captions)

    def to_dict(self) -> dict:
        return {"kind": "portrait", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> PortraitConfig:
        data = {k: v for k, v in data.items() if k != "kind"}
        schedule = _build(ScheduleConfig, data.pop("schedule", {}))
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown PortraitConfig fields: {sorted(unknown)}")
        return cls(schedule=schedule, **data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> PortraitConfig:
        path = Path(path)
        data = json.loads((path / "config.json" if path.is_dir() else path).read_text())
        if data.get("kind") != "portrait":
            raise ValueError(f"{path} is not a portrait model's config (kind {data.get('kind')!r})")
        return cls.from_dict(data)


PRESETS = {
    # the shipped default: 6.2 M parameters, 32x32 after the patch, attention at 8x8; 1.6 s per
    # training step of 32 images on one CPU thread with bf16 autocast (4x faster than float32 there)
    "portrait": PortraitConfig(),
    # a cheaper sibling for quick runs
    "portrait-small": PortraitConfig(base_channels=48, channel_mult=(1, 2, 3), num_res_blocks=1, attention_levels=(2,),
                                     head_channels=48, norm_groups=16, name="portrait-small"),
    # tests only
    "tiny": PortraitConfig(image_size=16, patch=2, base_channels=16, channel_mult=(1, 2), num_res_blocks=1,
                           attention_levels=(1,), head_channels=16, norm_groups=8, name="tiny"),
}


def portrait_preset(spec: str) -> PortraitConfig:
    """A preset name or a ``config.json`` path."""
    if spec in PRESETS:
        return PRESETS[spec]
    if Path(spec).exists():
        return PortraitConfig.load(spec)
    raise ValueError(f"unknown portrait config {spec!r}; use one of {', '.join(PRESETS)} or a config.json")
