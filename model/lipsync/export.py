"""textcall's lip-sync weights -> an official Wav2Lip checkpoint (``.pth``): ``convert.py`` in reverse.

The file is what Rudrabha/Wav2Lip's scripts write and read: ``torch.save`` of
``{"state_dict": {key: tensor}, "optimizer": None, "global_step": N, "global_epoch": 0}``, float32
weights and int64 batch-norm step counts. Generator keys carry DataParallel's ``module.`` prefix, as in
the released ``wav2lip.pth`` / ``wav2lip_gan.pth`` (``inference.py`` and ``wav2lip_train.py`` strip it);
SyncNet keys are bare, as ``color_syncnet_train.py`` saves them and loads them back without stripping
(``wav2lip_train.py``, which loads the expert, strips a prefix when there is one). ``optimizer`` is
None (the official loaders then start a fresh Adam); ``global_step`` is the run's step when the
folder holds a training state, else 0.

Only the official architecture maps onto the official code: its networks have fixed channel counts
and residual units, so weights of a reduced width (the ``small`` and ``tiny`` presets) have no place
there and are refused.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from model.checkpoint import STATE_META, atomic_write
from model.lipsync.checkpoint import load_model
from model.lipsync.networks import LipSyncConfig

logger = logging.getLogger(__name__)

OFFICIAL_NAMES = {"wav2lip": "wav2lip.pth", "syncnet": "lipsync_expert.pth"}  # the released files' names
PREFIX = {"wav2lip": "module.", "syncnet": ""}


class ExportError(ValueError):
    """The weights have no place in the official Wav2Lip format."""


def official_checkpoint(state: dict[str, torch.Tensor], config: LipSyncConfig, *, global_step: int = 0) -> dict:
    """The dict the official scripts ``torch.save``: ``state`` (our keys) under their prefix, float32."""
    if not config.official:
        capped = f", at most {config.residuals} residual units per stage" if config.residuals is not None else ""
        raise ExportError(
            f"{config.name} is a reduced {config.kind} network (width {config.width:g}{capped}): the official "
            "Wav2Lip code builds only the full-width network (width 1, its own residual counts) and cannot load "
            "it. Export weights trained with --preset official, or converted from an official checkpoint")
    prefix = PREFIX[config.kind]
    tensors = {prefix + k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().contiguous()
               for k, v in state.items()}
    return {"state_dict": tensors, "optimizer": None, "global_step": int(global_step), "global_epoch": 0}


def export(folder: str | Path, out: str | Path) -> tuple[Path, LipSyncConfig]:
    """Write the lip-sync network in ``folder`` (``model.safetensors`` + ``config.json``) as an official
    checkpoint at ``out``; an existing folder ``out`` gets the released file's name (``wav2lip.pth``,
    ``lipsync_expert.pth``). Returns the file written and the network's config."""
    folder = Path(folder).expanduser()
    module, config = load_model(folder)  # strict: every key of our layout, no other
    step = json.loads((folder / STATE_META).read_text()).get("step", 0) if (folder / STATE_META).is_file() else 0
    blob = official_checkpoint(module.state_dict(), config, global_step=step)
    path = Path(out).expanduser()
    if path.is_dir():
        path = path / OFFICIAL_NAMES[config.kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: torch.save(blob, p))
    logger.info("exported %s (%s, step %d) to %s", folder, config.kind, step, path)
    return path, config
