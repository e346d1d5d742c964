"""Diffusion-model folders: ``model.safetensors`` (float32) + ``config.json``, built back into networks.

A shipped folder holds the (EMA) weights used for sampling and the architecture config, nothing else;
training folders add the resumable training state. The files, the EMA and the training state are
``model.checkpoint``'s, shared by every trainer; this module knows the diffusion configs and networks.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from model.checkpoint import CONFIG, WEIGHTS, save_weights
from model.diffusion.config import ClassifierConfig, DiffusionConfig, load_config, save_config

__all__ = ["CONFIG", "WEIGHTS", "build_model", "describing_from_caption_model", "load_model", "save_model"]


def save_model(
    folder: str | Path, weights: nn.Module | dict[str, torch.Tensor], config: DiffusionConfig | ClassifierConfig
) -> Path:
    """Write ``model.safetensors`` (float32) and ``config.json``; ``weights`` is a module or a state dict."""
    return save_weights(folder, weights, config=lambda p: save_config(config, p), dtype=torch.float32,
                        metadata={"name": config.name})


def build_model(config: DiffusionConfig | ClassifierConfig) -> nn.Module:
    if isinstance(config, ClassifierConfig):
        from model.diffusion.classifier import AVClassifier

        return AVClassifier(config)
    from model.diffusion.unet import AVUNet

    return AVUNet(config.unet)


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, DiffusionConfig | ClassifierConfig]:
    """Build the network from ``config.json`` and load ``model.safetensors`` into it (eval mode).

    A diffusion model always comes back as ``(x_t, t, caption) -> eps``, whatever it was trained to
    predict (``config.prediction``); ``build_model`` gives the raw network that training uses.
    """
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise FileNotFoundError(f"{folder} holds no {WEIGHTS} + {CONFIG}")
    config = load_config(folder / CONFIG)
    module = build_model(config)
    module.load_state_dict(load_file(str(folder / WEIGHTS)))
    if isinstance(config, DiffusionConfig) and config.prediction != "eps":
        from model.diffusion.prediction import EpsNetwork
        from model.diffusion.schedule import linear_schedule

        module = EpsNetwork(module, linear_schedule(config.schedule))  # samplers and guidance speak eps
    return module.to(device).eval(), config


def describing_from_caption_model(
    state: dict[str, torch.Tensor], config: DiffusionConfig | ClassifierConfig
) -> tuple[dict[str, torch.Tensor], DiffusionConfig | ClassifierConfig]:
    """A caption-index model's weights -> a description-vector model (free-form captions) that does
    exactly what it did on the paper's captions and on none.

    The joint model's caption table becomes the linear map over the vector (its gender columns are
    the table's rows, every other column zero: ``condition_from_caption_table``). The classifier's
    head gets one row per slot: the gender values' rows are its two classes' rows, every other row
    zero, so every other attribute is uniform (no guidance) until trained, and the gender's softmax
    is the old one."""
    import dataclasses

    from model.describe.attributes import SLOTS
    from model.describe.conditioning import condition_from_caption_table, gender_captions
    from model.diffusion.captions import caption_index

    if config.unet.describes:
        raise ValueError("these weights already read a description vector")
    out = dict(state)
    if isinstance(config, ClassifierConfig):
        if config.num_classes != 2:
            raise ValueError("only a classifier of the paper's two captions converts to descriptions")
        for name in ("head.weight", "head.bias"):
            old = state[name]
            new = torch.zeros((SLOTS, *old.shape[1:]), dtype=old.dtype)
            # classes: caption index - 1; the gender block's value slots 1, 2 are those captions' genders
            for slot, text in enumerate(gender_captions()[1:], start=1):
                new[slot] = old[caption_index(text, config.captions) - 1]
            out[name] = new
    else:
        out.pop("embed.caption.weight")
        out["embed.condition.weight"] = condition_from_caption_table(state["embed.caption.weight"], config.caption_index)
    return out, dataclasses.replace(config, unet=dataclasses.replace(config.unet, attribute_slots=SLOTS))

