"""Typed, frozen configuration of the diffusion model; it travels with the weights as ``config.json``.

The presets share all code and differ only in numbers:

``paper``
    MM-Diffusion-like widths as in the paper (section V-A): 64x64 RGB, 16 frames at 16 fps, 16,000
    audio samples (1 s at 16 kHz) on the raw waveform, base width 128, channel multipliers (1, 2, 3, 4),
    2 residual blocks per level, 64-channel attention heads, cross-modal attention at the three lower
    levels. Trains on a GPU, not on 2 CPU cores (one forward pass alone takes tens of seconds there).

``small``
    The embedded default, sized so that ~1 s of video + audio comes out of DPM-Solver++ at 20 steps in
    a few seconds on a 2-core CPU and the weights stay well under 30 MB:

    - video keeps its native 64x64 output but enters through a 2x2 pixel-unshuffle (``video_patch=2``:
      [3, 64, 64] -> [12, 32, 32], lossless, undone by a pixel-shuffle at the output), so every
      convolution runs at 32x32 or below;
    - audio enters through a 1-D unshuffle of 20 samples (``audio_patch=20``: [1, 16000] -> [20, 800],
      i.e. a strided stem of 1.25 ms patches), then strides 2, 2: the audio branch works on 800, 400
      and 200 positions (50, 25 and 12.5 per video frame), which is what keeps its cost tiny;
    - base width 48, multipliers (1, 2, 2), one residual block per level (the paper has two; two
      doubles the cost), cross-modal attention at the two lower levels and the middle;
    - a learned per-position bias after the video stem (``position_embedding``, not in the paper);
    - the network predicts v instead of eps (``prediction="v"``, model/diffusion/prediction.py says
      why); ``paper`` keeps the paper's eps.

``small-mel``
    ``small`` with the audio branch on a 32-bin log-mel spectrogram (64 frames per second, no patch,
    self-attention over the chunk's audio) instead of the waveform; not in the paper,
    ``model/diffusion/audio_codec.py`` says why. The video branch is ``small``'s, so ``small``
    weights fine-tune into it (``--init``: the audio stem and head start fresh).

Measured on the 2-core CPU (tests/benchmarks/bench_diffusion.py): ``small`` 4.7 M parameters (18 MiB),
0.14 s per denoising step, 2.6 s for one second with DPM-Solver++ at 20 steps; ``paper`` 158 M
parameters, 8.2 s per step (DDPM-1000 would take 2.3 h per generated second).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

# the caption vocabulary and the network's shape have modules of their own; importable from here too
from model.diffusion.captions import DEFAULT_CAPTIONS, NULL_CAPTION, caption_index  # noqa: F401
from model.diffusion.unet_config import AUDIO_FEATURES, UNetConfig  # noqa: F401

PREDICTIONS = ("eps", "v")


@dataclass(frozen=True)
class ScheduleConfig:
    """Linear beta schedule of DDPM (paper sections III and V-A): T = 1000, betas 1e-4 .. 0.02."""

    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def __post_init__(self) -> None:
        if self.timesteps < 1 or not 0 < self.beta_start <= self.beta_end < 1:
            raise ValueError("need T >= 1 and 0 < beta_start <= beta_end < 1")


@dataclass(frozen=True)
class DiffusionConfig:
    """Everything that must travel with the weights: network, schedule, captions, data scaling.

    Model inputs: video uint8 -> [-1, 1]; audio float in [-1, 1] times ``audio_scale``.
    """

    unet: UNetConfig = field(default_factory=UNetConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    captions: tuple[str, ...] = DEFAULT_CAPTIONS
    audio_scale: float = 1.0
    video_fps: int = 16
    sample_rate: int = 16_000
    name: str = "custom"
    # What the network outputs (see model/diffusion/prediction.py). "eps" is the paper's Eq. 5;
    # "v" (Salimans & Ho 2022) is the same model re-parameterized so that high-noise steps do not
    # amplify the network's error by sqrt((1 - alphabar) / alphabar) (158x at t = T - 1). Samplers and
    # guidance always see eps either way.
    prediction: str = "eps"

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.captions[NULL_CAPTION] != "":
            raise ValueError("caption 0 must be the empty (null) caption")
        if len(self.captions) != self.unet.num_captions:
            raise ValueError("unet.num_captions must equal the number of captions")
        if self.audio_scale <= 0:
            raise ValueError("audio_scale must be positive")
        if self.unet.audio_samples * self.video_fps != self.unet.frames * self.sample_rate:
            raise ValueError("frames / video_fps must equal audio_samples / sample_rate")

    def caption_index(self, text: str) -> int:
        return caption_index(text, self.captions)

    # -- JSON round trip ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": "diffusion", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> DiffusionConfig:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class ClassifierConfig:
    """The noisy joint classifier (section IV-C): the U-Net's encoder, a pool and a linear head.

    Classes are the non-null captions: class ``k`` is caption index ``k + 1``. A description classifier
    (``unet.attribute_slots`` > 0, free-form captions; not in the paper) has one logit per slot of the
    description vector and a softmax per attribute over its values: p(description | x_t) is the
    product over the attributes a caption says.
    """

    unet: UNetConfig = field(default_factory=UNetConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    captions: tuple[str, ...] = DEFAULT_CAPTIONS
    audio_scale: float = 1.0
    name: str = "custom"

    def __post_init__(self) -> None:
        if len(self.captions) < 3 or self.captions[NULL_CAPTION] != "":
            raise ValueError("a classifier needs the null caption and at least two real captions")

    @property
    def num_classes(self) -> int:
        return self.unet.attribute_slots if self.unet.describes else len(self.captions) - 1

    def to_dict(self) -> dict:
        return {"kind": "classifier", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> ClassifierConfig:
        return _from_dict(cls, data)


def _x_t_mismatches(a: DiffusionConfig, b: DiffusionConfig | ClassifierConfig) -> list[str]:
    """What differs between two configs in the noisy x_t they read: schedule, audio scale, clip
    shape, captions (empty: they read the same)."""
    shape = ("frames", "image_size", "video_channels", "audio_samples", "audio_features", "audio_channels", "audio_length", "mel_fft")
    return [
        f"{name} {mine} vs {theirs}"
        for name, mine, theirs in [
            *((k, getattr(a.unet, k), getattr(b.unet, k)) for k in shape),
            ("schedule", a.schedule, b.schedule),
            ("audio_scale", a.audio_scale, b.audio_scale),
            ("captions", a.captions, b.captions),
        ]
        if mine != theirs
    ]


def check_classifier(diffusion: DiffusionConfig, classifier: DiffusionConfig | ClassifierConfig) -> None:
    """Raise ``ValueError`` unless ``classifier`` can guide ``diffusion``: it must read the same noisy
    x_t (schedule, audio scale, clip shape) and know the same captions."""
    if not isinstance(classifier, ClassifierConfig):
        raise ValueError("the classifier folder holds a diffusion model, not a classifier")
    problems = _x_t_mismatches(diffusion, classifier)
    if problems:
        raise ValueError("the classifier was trained for another diffusion model (diffusion vs classifier: "
                         + "; ".join(problems) + "); retrain it, e.g. `textcall train classifier --init`")


def check_autoguide(diffusion: DiffusionConfig, guide: DiffusionConfig | ClassifierConfig) -> None:
    """Raise ``ValueError`` unless ``guide`` can serve as the weaker network in autoguidance of
    ``diffusion``: a diffusion model on the same x_t (schedule, audio scale, clip shape, captions)."""
    if not isinstance(guide, DiffusionConfig):
        raise ValueError("the autoguide folder holds a classifier, not a diffusion model")
    problems = _x_t_mismatches(diffusion, guide)
    if problems:
        raise ValueError("the autoguide network denoises another x_t than the diffusion model (diffusion vs "
                         "autoguide: " + "; ".join(problems) + "); use an earlier checkpoint of the same run")


def _from_dict(cls, data: dict):
    """A ``DiffusionConfig`` or ``ClassifierConfig`` from its JSON form (nested configs rebuilt)."""
    data = {k: v for k, v in data.items() if k != "kind"}
    unet = _build(UNetConfig, data.pop("unet", {}))
    schedule = _build(ScheduleConfig, data.pop("schedule", {}))
    if "captions" in data:
        data["captions"] = tuple(data["captions"])
    return cls(unet=unet, schedule=schedule, **data)


def _build(cls, data: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def load_config(path: str | Path) -> DiffusionConfig | ClassifierConfig:
    """Read a ``config.json`` (a file or the folder that holds it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    data = json.loads(path.read_text())
    kind = data.get("kind", "diffusion")
    if kind == "classifier":
        return ClassifierConfig.from_dict(data)
    if kind == "diffusion":
        return DiffusionConfig.from_dict(data)
    raise ValueError(f"{path}: unknown config kind {kind!r}")


def save_config(config: DiffusionConfig | ClassifierConfig, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config.to_dict(), indent=2) + "\n")


# -- presets ---------------------------------------------------------------------------------------
PAPER_UNET = UNetConfig()

SMALL_UNET = UNetConfig(
    video_patch=2,
    audio_patch=20,
    base_channels=48,
    channel_mult=(1, 2, 2),
    num_res_blocks=1,
    audio_down=(2, 2),
    audio_dilations=(1, 2, 4),
    attention_levels=(1, 2),
    head_channels=48,
    cross_grid=4,
    cross_audio_tokens=4,
    norm_groups=16,
    position_embedding=True,
)

# `small` with the audio branch on a log-mel spectrogram (not in the paper; audio_codec.py says why),
# the shipped default (model/weights/diffusion):
# 32 bins x 64 frames per second, no patching, and self-attention over the whole chunk's audio.
# 32 bins, not 64, so the first level (48 channels) is wider than its input; the Griffin-Lim round
# trip keeps nearly as much of the envelope (42 of 60 corpus windows pass the speech-like bar, 45 with
# 64 bins). A 64-bin run's residual noise was first blamed on the width, but 32 bins left it as it was;
# a higher learning rate for the audio branch removed it (--audio-lr-scale, README Roadmap).
SMALL_MEL_UNET = dataclasses.replace(
    SMALL_UNET, audio_features="mel", audio_patch=1, mel_bins=32, cross_audio_tokens=2, audio_self_attention=True
)

# `small-mel` whose video branch reads the call's reference face (one face per call, model/call.py);
# fine-tuned from `small-mel` weights (the reference encoder starts at zero: the paper's network)
SMALL_MEL_REF_UNET = dataclasses.replace(SMALL_MEL_UNET, reference=True)

# tests only: seconds on CPU
TINY_UNET = UNetConfig(
    frames=4,
    image_size=16,
    audio_samples=4000,
    video_patch=2,
    audio_patch=20,
    base_channels=16,
    channel_mult=(1, 2),
    num_res_blocks=1,
    audio_down=(2,),
    audio_dilations=(1, 2),
    attention_levels=(0, 1),
    head_channels=16,
    cross_grid=2,
    cross_audio_tokens=2,
    norm_groups=8,
)


PRESETS = ("paper", "small", "small-mel", "small-mel-ref", "tiny", "tiny-ref")


def preset(name: str) -> DiffusionConfig:
    """``paper``, ``small``, ``small-mel``, ``small-mel-ref`` or ``tiny`` / ``tiny-ref`` (tests)."""
    if name == "paper":
        return DiffusionConfig(unet=PAPER_UNET, name="paper")
    if name == "small":
        return DiffusionConfig(unet=SMALL_UNET, name="small", prediction="v")
    if name == "small-mel":
        return DiffusionConfig(unet=SMALL_MEL_UNET, name="small-mel", prediction="v")
    if name == "small-mel-ref":
        return DiffusionConfig(unet=SMALL_MEL_REF_UNET, name="small-mel-ref", prediction="v")
    if name == "tiny":
        return DiffusionConfig(unet=TINY_UNET, name="tiny")  # 4 frames at 16 fps = 0.25 s
    if name == "tiny-ref":
        return DiffusionConfig(unet=dataclasses.replace(TINY_UNET, reference=True), name="tiny-ref")
    raise ValueError(f"unknown preset {name!r}; use {', '.join(PRESETS)} (or a config.json path)")


def classifier_preset(name: str) -> ClassifierConfig:
    base = preset(name)
    return ClassifierConfig(unet=base.unet, schedule=base.schedule, captions=base.captions,
                            audio_scale=base.audio_scale, name=name)


def resolve_config(spec: str) -> DiffusionConfig | ClassifierConfig:
    """A preset name or a path to a ``config.json``."""
    if spec in PRESETS:
        return preset(spec)
    return load_config(spec)
