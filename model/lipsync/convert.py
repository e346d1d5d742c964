"""Official Wav2Lip checkpoints -> ``model.safetensors`` + ``config.json``.

The released ``wav2lip.pth``, ``wav2lip_gan.pth`` and ``lipsync_expert.pth`` hold
``{"state_dict": {key: tensor}, "optimizer": ..., "global_step": ...}``, the keys with the ``module.``
prefix of ``nn.DataParallel`` or without it. Only the state dict is read, with
``torch.load(weights_only=True)``; a ``module.`` prefix is stripped, the keys are checked against the
official architecture (strict load), and the weights are written as float32 safetensors beside the
architecture config. ``export.py`` writes the other way.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from model.lipsync.checkpoint import save_model
from model.lipsync.networks import LipSyncConfig, build

logger = logging.getLogger(__name__)


class ConversionError(ValueError):
    """The file is not an official Wav2Lip / SyncNet checkpoint."""


def read_official(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of an official checkpoint, ``module.`` prefix stripped."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (pickle/zip errors of every kind: the file is not a checkpoint)
        raise ConversionError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{path}: no state dict of tensors inside")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def guess_kind(state: dict[str, torch.Tensor]) -> str:
    if any(k.startswith("face_decoder_blocks.") for k in state):
        return "wav2lip"
    if any(k.startswith("face_encoder.") for k in state):
        return "syncnet"
    raise ConversionError("the state dict is neither a Wav2Lip generator nor a SyncNet expert")


def convert(path: str | Path, out_dir: str | Path, *, kind: str | None = None) -> tuple[Path, LipSyncConfig]:
    """Read an official checkpoint, load it strictly into our network, write the safetensors folder."""
    state = read_official(path)
    kind = kind or guess_kind(state)
    config = LipSyncConfig(kind=kind, name="wav2lip" if kind == "wav2lip" else "syncnet")
    module = build(config)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConversionError(f"{path}: does not match the official {kind} layout: {exc}") from exc
    folder = save_model(out_dir, {k: v.float() if v.is_floating_point() else v for k, v in module.state_dict().items()}, config)
    logger.info("converted %s (%s) into %s", path, kind, folder)
    return folder, config
