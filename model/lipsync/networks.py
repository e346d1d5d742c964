"""Wav2Lip's generator and its SyncNet lip-sync expert (``SyncNet_color``), official layouts.

Parameter names follow Rudrabha/Wav2Lip (``models/wav2lip.py``, ``models/syncnet.py``,
``models/conv.py``), so the official ``wav2lip.pth``, ``wav2lip_gan.pth`` and
``lipsync_expert.pth`` load after the converter strips DataParallel's ``module.`` prefix.

Every conv unit is ``conv_block = Sequential(Conv2d|ConvTranspose2d, BatchNorm2d)`` then ReLU, with
an optional identity residual (added before the ReLU). A config's ``width`` multiplies every channel
count except the inputs (6 face channels, 15 stacked lower-half channels, 1 mel channel) and the 3
output colours; ``residuals`` caps the number of residual units per stage (``None``: the official
counts). ``width=1, residuals=None`` is the official network.

Shapes (official, batch ``B``):

* ``Wav2Lip(mel [B,1,80,16], faces [B,6,96,96]) -> [B,3,96,96]`` in [0, 1]; faces are the masked
  target frame (lower half zero) and a reference frame, concatenated on channels, in [0, 1].
  ``[B,T,1,80,16]`` + ``[B,6,T,96,96]`` -> ``[B,3,T,96,96]`` as in the original.
* ``SyncNet(mel [B,1,80,16], faces [B,15,48,96]) -> (audio [B,512], face [B,512])``, both L2-normalised
  (and non-negative: the last unit ends in a ReLU); faces are the lower halves of 5 consecutive
  96x96 frames stacked on channels.
* ``QualityDisc(faces [B,3,T,96,96] or [B,3,96,96]) -> [B*T, 1]``: Wav2Lip's visual quality
  discriminator (``Wav2Lip_disc_qual``, the GAN variant's): the probability that each frame's lower
  half is a real face, from unnormalised convs with leaky ReLUs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KINDS = ("wav2lip", "syncnet", "disc")


@dataclass(frozen=True)
class LipSyncConfig:
    """Architecture of one network; travels with its weights as ``config.json``."""

    kind: str = "wav2lip"  # wav2lip | syncnet
    width: float = 1.0  # channel multiplier (1 = official)
    residuals: int | None = None  # max residual units per stage (None = official)
    image_size: int = 96  # face crop side; the official stride pattern needs 96
    mel_steps: int = 16  # mel window length (the audio encoders need 80 x 16)
    frames: int = 5  # SyncNet: consecutive frames per window (15 input channels)
    name: str = "wav2lip"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not 0.05 <= self.width <= 4.0:
            raise ValueError(f"width must be in [0.05, 4], got {self.width}")
        if self.residuals is not None and self.residuals < 0:
            raise ValueError("residuals must be >= 0 or None")
        if self.image_size != 96 or self.mel_steps != 16:
            raise ValueError("the Wav2Lip/SyncNet stride pattern needs 96x96 faces and 16 mel steps")
        if self.frames != 5:
            raise ValueError("SyncNet_color takes 5 frames (15 channels)")

    @property
    def official(self) -> bool:
        return self.width == 1.0 and self.residuals is None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> LipSyncConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def save_config(config: LipSyncConfig, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config.to_json(), indent=2) + "\n")


def load_config(path: str | Path) -> LipSyncConfig:
    return LipSyncConfig.from_json(json.loads(Path(path).read_text()))


# presets: official (full width, for a GPU or the released weights) and small (trains on 2 CPU cores)
PRESETS: dict[str, dict] = {
    "official": {"width": 1.0, "residuals": None},
    "small": {"width": 0.25, "residuals": 1},
    "tiny": {"width": 0.0625, "residuals": 0},  # tests
}


# the small expert is narrower still: at width 0.25 it had not left chance level after 2,500 steps on
# the synthetic corpus (lr 5e-4 or 1e-3), at width 0.125 it left it after about 600
KIND_PRESETS: dict[tuple[str, str], dict] = {("syncnet", "small"): {"width": 0.125, "residuals": 1}}


def preset(kind: str, name: str) -> LipSyncConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return LipSyncConfig(kind=kind, name=f"{kind}-{name}", **KIND_PRESETS.get((kind, name), PRESETS[name]))


# -- building blocks (official names: conv_block.0 = conv, conv_block.1 = batch norm) ---------------
class Conv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size, stride, padding, residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class Conv2dTranspose(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size, stride, padding, output_padding: int = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv_block(x))


class _Channels:
    """Scales official channel counts by the config's width."""

    def __init__(self, config: LipSyncConfig) -> None:
        self.width = config.width
        self.residuals = config.residuals

    def __call__(self, c: int) -> int:
        return max(4, int(round(c * self.width)))

    def res(self, official: int) -> int:
        return official if self.residuals is None else min(official, self.residuals)


def _stage(ch: _Channels, cin: int, cout: int, k, s, p, n_res: int, *, scale_in: bool = True) -> list[nn.Module]:
    """One downsampling unit then ``n_res`` (capped) residual units; channel counts are official."""
    c_in = ch(cin) if scale_in else cin
    layers: list[nn.Module] = [Conv2d(c_in, ch(cout), k, s, p)]
    layers += [Conv2d(ch(cout), ch(cout), 3, 1, 1, residual=True) for _ in range(ch.res(n_res))]
    return layers


def _audio_encoder(ch: _Channels, last_res: int) -> nn.Sequential:
    """``[B,1,80,16] -> [B,512w,1,1]``: 80x16 -> 27x16 -> 9x6 -> 3x3 -> 1x1."""
    return nn.Sequential(
        *_stage(ch, 1, 32, 3, 1, 1, 2, scale_in=False),  # 80x16
        *_stage(ch, 32, 64, 3, (3, 1), 1, 2),  # 27x16
        *_stage(ch, 64, 128, 3, 3, 1, 2),  # 9x6
        *_stage(ch, 128, 256, 3, (3, 2), 1, last_res),  # 3x3
        Conv2d(ch(256), ch(512), 3, 1, 0),  # 1x1
        Conv2d(ch(512), ch(512), 1, 1, 0),
    )


class Wav2Lip(nn.Module):
    """The Wav2Lip generator (U-Net face encoder/decoder with an audio bottleneck)."""

    def __init__(self, config: LipSyncConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or LipSyncConfig(kind="wav2lip")
        ch = _Channels(config)
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(6, ch(16), 7, 1, 3)),  # 96x96
            nn.Sequential(*_stage(ch, 16, 32, 3, 2, 1, 2)),  # 48x48
            nn.Sequential(*_stage(ch, 32, 64, 3, 2, 1, 3)),  # 24x24
            nn.Sequential(*_stage(ch, 64, 128, 3, 2, 1, 2)),  # 12x12
            nn.Sequential(*_stage(ch, 128, 256, 3, 2, 1, 2)),  # 6x6
            nn.Sequential(*_stage(ch, 256, 512, 3, 2, 1, 1)),  # 3x3
            nn.Sequential(Conv2d(ch(512), ch(512), 3, 1, 0), Conv2d(ch(512), ch(512), 1, 1, 0)),  # 1x1
        ])
        self.audio_encoder = _audio_encoder(ch, last_res=1)

        def up(cin: int, cout: int, n_res: int, stride: int = 2) -> nn.Sequential:
            # cin is the concatenation of the previous decoder output and the skip features
            first = (Conv2dTranspose(cin, ch(cout), 3, 1, 0) if stride == 1
                     else Conv2dTranspose(cin, ch(cout), 3, 2, 1, output_padding=1))
            return nn.Sequential(first, *[Conv2d(ch(cout), ch(cout), 3, 1, 1, residual=True) for _ in range(ch.res(n_res))])

        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(ch(512), ch(512), 1, 1, 0)),  # 1x1 (+ face 512 -> 1024)
            up(ch(512) + ch(512), 512, 1, stride=1),  # 3x3 (+ 512 -> 1024)
            up(ch(512) + ch(512), 512, 2),  # 6x6 (+ 256 -> 768)
            up(ch(512) + ch(256), 384, 2),  # 12x12 (+ 128 -> 512)
            up(ch(384) + ch(128), 256, 2),  # 24x24 (+ 64 -> 320)
            up(ch(256) + ch(64), 128, 2),  # 48x48 (+ 32 -> 160)
            up(ch(128) + ch(32), 64, 2),  # 96x96 (+ 16 -> 80)
        ])
        self.output_block = nn.Sequential(
            Conv2d(ch(64) + ch(16), ch(32), 3, 1, 1),
            nn.Conv2d(ch(32), 3, kernel_size=1, stride=1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, audio_sequences: Tensor, face_sequences: Tensor) -> Tensor:
        """``[B,1,80,16], [B,6,96,96] -> [B,3,96,96]`` or ``[B,T,1,80,16], [B,6,T,96,96] -> [B,3,T,96,96]``."""
        batch = audio_sequences.size(0)
        sequence = face_sequences.dim() > 4
        if sequence:
            audio_sequences = torch.cat([audio_sequences[:, i] for i in range(audio_sequences.size(1))], dim=0)
            face_sequences = torch.cat([face_sequences[:, :, i] for i in range(face_sequences.size(2))], dim=0)
        x = self.audio_encoder(audio_sequences)  # [B, 512w, 1, 1]
        feats = []
        f = face_sequences
        for block in self.face_encoder_blocks:
            f = block(f)
            feats.append(f)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), feats.pop()), dim=1)
        x = self.output_block(x)  # [B', 3, 96, 96]
        if sequence:
            x = torch.stack(torch.split(x, batch, dim=0), dim=2)  # [B, 3, T, 96, 96]
        return x


class SyncNet(nn.Module):
    """Wav2Lip's lip-sync expert ``SyncNet_color``: embeds 5 lower-half frames and a mel window."""

    def __init__(self, config: LipSyncConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or LipSyncConfig(kind="syncnet", name="syncnet")
        ch = _Channels(config)
        self.face_encoder = nn.Sequential(
            Conv2d(3 * config.frames, ch(32), 7, 1, 3),  # 48x96
            *_stage(ch, 32, 64, 5, (1, 2), 1, 2),  # 46x47
            *_stage(ch, 64, 128, 3, 2, 1, 3),  # 23x24
            *_stage(ch, 128, 256, 3, 2, 1, 2),  # 12x12
            *_stage(ch, 256, 512, 3, 2, 1, 2),  # 6x6
            Conv2d(ch(512), ch(512), 3, 2, 1),  # 3x3
            Conv2d(ch(512), ch(512), 3, 1, 0),  # 1x1
            Conv2d(ch(512), ch(512), 1, 1, 0),
        )
        self.audio_encoder = _audio_encoder(ch, last_res=2)

    def forward(self, audio_sequences: Tensor, face_sequences: Tensor) -> tuple[Tensor, Tensor]:
        """``[B,1,80,16], [B,15,48,96] -> (audio [B,512w], face [B,512w])``, unit length."""
        face = self.face_encoder(face_sequences).flatten(1)
        audio = self.audio_encoder(audio_sequences).flatten(1)
        return F.normalize(audio, p=2, dim=1), F.normalize(face, p=2, dim=1)


class NoNormConv2d(nn.Module):
    """Official ``nonorm_Conv2d``: ``conv_block = Sequential(Conv2d)`` then LeakyReLU(0.01)."""

    def __init__(self, cin: int, cout: int, kernel_size, stride, padding) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv_block(x))


class QualityDisc(nn.Module):
    """Wav2Lip's visual quality discriminator (``Wav2Lip_disc_qual``), official names, scaled by width."""

    def __init__(self, config: LipSyncConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or LipSyncConfig(kind="disc", name="disc")
        ch = _Channels(config)

        def two(cin: int, cout: int, k: int, s, p: int) -> nn.Sequential:
            return nn.Sequential(NoNormConv2d(ch(cin), ch(cout), k, s, p), NoNormConv2d(ch(cout), ch(cout), k, 1, p))

        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(NoNormConv2d(3, ch(32), 7, 1, 3)),  # 48x96
            two(32, 64, 5, (1, 2), 2),  # 48x48
            two(64, 128, 5, 2, 2),  # 24x24
            two(128, 256, 5, 2, 2),  # 12x12
            two(256, 512, 3, 2, 1),  # 6x6
            two(512, 512, 3, 2, 1),  # 3x3
            nn.Sequential(NoNormConv2d(ch(512), ch(512), 3, 1, 0), NoNormConv2d(ch(512), ch(512), 1, 1, 0)),  # 1x1
        ])
        self.binary_pred = nn.Sequential(nn.Conv2d(ch(512), 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, faces: Tensor) -> Tensor:
        """``[B,3,T,96,96]`` (or ``[B,3,96,96]``) -> real-face probability per frame ``[B*T, 1]`` (frame-major)."""
        if faces.dim() > 4:
            faces = torch.cat([faces[:, :, i] for i in range(faces.size(2))], dim=0)
        x = faces[:, :, faces.size(2) // 2:]  # the lower half
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).view(len(x), -1)


def build(config: LipSyncConfig) -> nn.Module:
    return {"wav2lip": Wav2Lip, "syncnet": SyncNet, "disc": QualityDisc}[config.kind](config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
