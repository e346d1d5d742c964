"""Loading and sampling the portrait model: caption -> one face, uint8 ``[S, S, 3]`` RGB.

The samplers are the joint model's own (``model/diffusion/sampling.py``): a still is a one-frame
video with no audio, ``AV([B, 1, 3, S, S], [B, 1, 0])``, so DDPM (the paper's 1,000 steps), DDIM and
DPM-Solver++ all apply unchanged. ``ancestral`` is DDPM's ancestral step on a respaced grid of
``steps`` timesteps (DDIM with eta = 1, as improved DDPM respaces its sampler): on the shipped
portrait model its faces are as crisp as DDPM-1000's at a fraction of the cost, where the
deterministic samplers leave the eyes smeared (docs/2026-12-06-one-face-per-call.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from model.diffusion.av import AV
from model.diffusion.config import NULL_CAPTION
from model.diffusion.generate import video_from_model
from model.diffusion.sampling import ddim, sample
from model.diffusion.schedule import eps_from_v, linear_schedule
from model.portrait.config import PortraitConfig
from model.portrait.network import PortraitUNet

WEIGHTS, CONFIG = "model.safetensors", "config.json"
DEFAULT_STEPS = 50  # a call samples its face once, so it can afford 5x the clip sampler's steps


def save_portrait_model(folder: str | Path, state: dict[str, torch.Tensor], config: PortraitConfig, *, half: bool = False) -> Path:
    """``model.safetensors`` (float32, or float16 for shipping) + ``config.json``, each written atomically."""
    from model.checkpoint import save_weights

    return save_weights(folder, state, config=config.save, dtype=torch.float16 if half else torch.float32,
                        metadata={"name": config.name, "kind": "portrait"})


class PortraitModel:
    """A loaded portrait model; ``sample`` draws faces. Not thread-safe (one generation thread).

    ``cleaner``: the portrait cleaner in the model folder's ``clean/`` (a restorer trained without a
    reference on this model's own texture; ``textcall train portrait-clean``), or None."""

    def __init__(self, net: PortraitUNet, config: PortraitConfig, device: str | torch.device = "cpu", cleaner=None) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.config = config
        self.schedule = linear_schedule(config.schedule)
        self.cleaner = cleaner

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> PortraitModel:
        folder = Path(folder)
        if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
            raise FileNotFoundError(f"{folder} holds no portrait model ({WEIGHTS} + {CONFIG})")
        config = PortraitConfig.load(folder / CONFIG)
        net = PortraitUNet(config)
        net.load_state_dict({k: v.float() for k, v in load_file(str(folder / WEIGHTS)).items()})
        cleaner = None
        if (folder / "clean" / CONFIG).is_file():
            from model.restore.restorer import Restorer

            cleaner = Restorer.load(folder / "clean", device)
        return cls(net, config, device, cleaner)

    def _network(self, caption: torch.Tensor, cfg_scale: float):
        net, schedule, v = self.net, self.schedule, self.config.prediction == "v"
        null = self._null().to(caption.device)

        def eps(img: torch.Tensor, t: torch.Tensor, cap: torch.Tensor) -> torch.Tensor:
            out = net(img, t, cap)
            return eps_from_v(schedule, img, t, out) if v else out

        def denoiser(x: AV, t: torch.Tensor) -> AV:
            img = x.video[:, 0]
            if cfg_scale == 1.0 or bool((caption == null).all()):
                out = eps(img, t, caption)
            else:
                both = eps(torch.cat([img, img]), torch.cat([t, t]), torch.cat([caption, null.expand_as(caption)]))
                cond, uncond = both.chunk(2)
                out = uncond + cfg_scale * (cond - uncond)
            return AV(out[:, None], torch.zeros_like(x.audio))

        return denoiser

    def _null(self) -> torch.Tensor:
        if self.config.describes:
            from model.describe.attributes import null_vector

            return torch.from_numpy(null_vector())[None]
        return torch.tensor(NULL_CAPTION)

    def condition(self, caption, count: int) -> torch.Tensor:
        """What the network reads for ``caption``: an index ``[count]`` (caption models) or a description
        vector ``[count, slots]`` (description models; a text is read for its gender only here, the
        caption encoder (``model.describe``) reads the rest before this is called)."""
        if self.config.describes:
            from model.describe.attributes import SLOTS, vector

            if isinstance(caption, (str, int)):
                from model.speech.voice import gender_of_caption

                index = caption if isinstance(caption, int) else self.config.caption_index(caption)
                if not 0 <= index < len(self.config.captions):
                    raise ValueError(f"caption index {index} is outside the model's {len(self.config.captions)} captions")
                caption = vector({"gender": gender_of_caption(self.config.captions[index])})
            vec = np.asarray(caption, np.float32)
            if vec.shape[-1] != SLOTS or vec.ndim > 2:
                raise ValueError(f"a description vector is [{SLOTS}] or [count, {SLOTS}], got {vec.shape}")
            return torch.from_numpy(np.broadcast_to(vec.reshape(-1, SLOTS), (count, SLOTS)).copy()).to(self.device)
        if not isinstance(caption, (str, int)):
            raise ValueError(f"{self.config.name} reads a caption (text or index), not a description vector")
        index = caption if isinstance(caption, int) else self.config.caption_index(caption)
        if not 0 <= index < len(self.config.captions):
            raise ValueError(f"caption index {index} is outside the model's {len(self.config.captions)} captions")
        return torch.full((count,), index, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def sample(self, caption="", *, seed: int = 0, count: int = 1, steps: int | None = DEFAULT_STEPS,
               sampler: str = "dpm++", cfg_scale: float = 1.0, clean: bool = True) -> np.ndarray:
        """``count`` faces for ``caption`` (text, an index, or for a description model a description
        vector; "" or 0: any person): uint8 ``[count, S, S, 3]``, cleaned by the ``cleaner`` when there
        is one and ``clean``.

        Raises ``ValueError`` for a caption the model cannot honour (see ``caption_index``).
        """
        cap = self.condition(caption, count)
        size = self.config.image_size
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        noise = AV(torch.randn((count, 1, 3, size, size), generator=gen, device=self.device),
                   torch.zeros((count, 1, 0), device=self.device))
        if sampler == "ancestral":
            x = ddim(self._network(cap, cfg_scale), self.schedule, noise, steps or DEFAULT_STEPS, eta=1.0, generator=gen)
        else:
            x = sample(sampler, self._network(cap, cfg_scale), self.schedule, noise,
                       None if sampler == "ddpm" else steps, generator=gen)
        faces = x.video[:, 0].clamp(-1, 1)
        if clean and self.cleaner is not None:
            faces = self.cleaner.net(faces, faces).clamp(-1, 1)  # blind: the face is its own reference
        return video_from_model(faces.float())


# what a description model's sample sheet shows, one row each
SHEET_DESCRIPTIONS = (
    {},
    {"gender": "male"},
    {"gender": "female"},
    {"gender": "female", "hair": "red", "glasses": "yes"},
    {"gender": "male", "skin": "dark", "facial_hair": "beard"},
    {"gender": "female", "hair": "blond", "skin": "light", "hair_style": "ponytail"},
    {"gender": "male", "hair": "grey", "glasses": "yes", "shirt": "blue"},
    {"hair": "black", "skin": "medium", "glasses": "no"},
)


def sample_sheet(folder: str | Path, path: str | Path, *, device="cpu", per_caption: int = 8, steps: int = 25) -> Path | None:
    """Faces for each caption of the model in ``folder`` (fixed seeds), as a PNG to look at."""
    from model.media import image_grid

    model = PortraitModel.load(folder, device)
    faces, labels = [], []
    if model.config.describes:
        from model.describe.attributes import text_of, vector

        for index, described in enumerate(SHEET_DESCRIPTIONS):
            faces.append(model.sample(vector(described), seed=1000 + index, count=per_caption, steps=steps, cfg_scale=3.0))
            labels += [text_of(described)] * per_caption
    else:
        for index, caption in enumerate(model.config.captions):
            faces.append(model.sample(index, seed=1000 + index, count=per_caption, steps=steps))
            labels += [caption.replace(" is talking", "") or "(none)"] * per_caption
    return image_grid(np.concatenate(faces), path, columns=per_caption, scale=2, labels=labels)


