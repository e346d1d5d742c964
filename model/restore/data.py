"""Training triples for the restorer: (input frame, reference face, target frame), uint8 -> [-1, 1].

Targets are corpus frames; each reference is a frame of another clip of the same person
(``model.diffusion.train.ReferencePicker``'s rule). Inputs are the target made to look like the joint
model's output, two ways:

- ``generated``: the joint model's own re-sampling of the target's clip (SDEdit, Meng et al. 2022):
  the clip noised to a random level t0 in [300, 650] and denoised by the reference-conditioned model
  with its audio as the condition, then smoothed over time as the receiver does. Its pose and mouth
  follow the real clip, its texture is the model's. Made once by ``make_generated`` (minutes).
- ``synthetic``: blur, luma and colour noise at several scales, a colour cast: cheap, endless.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

logger = logging.getLogger(__name__)


def _gaussian(x: Tensor, sigma: Tensor) -> Tensor:
    """Per-sample Gaussian blur of ``[B, C, H, W]`` with ``sigma`` ``[B]`` pixels (0 = none)."""
    radius = 4
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (taps[None] / sigma.clamp(min=1e-3)[:, None]) ** 2)  # [B, 9]
    k = k / k.sum(dim=1, keepdim=True)
    b, c, h, w = x.shape
    y = x.reshape(1, b * c, h, w)
    kx = k.repeat_interleave(c, dim=0)[:, None, None, :]  # [B*C, 1, 1, 9]
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), kx, groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), kx.transpose(2, 3), groups=b * c)
    return y.reshape(b, c, h, w)


def synthetic_degrade(x: Tensor, gen: torch.Generator) -> Tensor:
    """``[B, 3, S, S]`` in [-1, 1] -> soft, mottled, noisy, slightly off-colour versions of it."""
    b, _, s, _ = x.shape
    u = lambda lo, hi, *shape: torch.empty(*shape, device=x.device).uniform_(lo, hi, generator=gen)  # noqa: E731
    y = _gaussian(x, u(0.4, 1.6, b))
    luma = torch.tensor([0.299, 0.587, 0.114], device=x.device).reshape(1, 3, 1, 1)
    for scale, (lo, hi) in ((4, (0.0, 0.10)), (8, (0.0, 0.12)), (16, (0.0, 0.08))):  # mottling at several sizes
        field = torch.randn(b, 3, s // scale, s // scale, generator=gen, device=x.device)
        field = F.interpolate(field, size=(s, s), mode="bilinear", align_corners=False)
        chroma = field - (field * luma).sum(dim=1, keepdim=True)  # colour without brightness
        y = y + u(lo, hi, b, 1, 1, 1) * chroma + u(0, hi / 2, b, 1, 1, 1) * field.mean(dim=1, keepdim=True)
    y = y + u(0.0, 0.05, b, 1, 1, 1) * torch.randn(y.shape, generator=gen, device=x.device)
    y = y + u(-0.04, 0.04, b, 3, 1, 1)
    return y.clamp(-1, 1)


@torch.no_grad()
def sdedit_clip(model, config, video: np.ndarray, audio: np.ndarray, reference: np.ndarray, caption: int, t0: int,
                steps: int, seed: int) -> np.ndarray:
    """The joint model's re-sampling of one clip: uint8 ``[F, H, W, 3]`` -> uint8 ``[F, H, W, 3]``.

    The clip is noised to ``t0`` and denoised by DDIM in ``steps`` steps to t = 0, with its audio
    replacing the audio branch (Eq. 10; no reconstruction guidance) and ``reference`` as the face.
    """
    from model.diffusion.audio_codec import audio_codec
    from model.diffusion.av import AV
    from model.audio import fit_audio
    from model.diffusion.generate import video_from_model, video_to_model
    from model.diffusion.guidance import conditioned, with_replacement
    from model.diffusion.sampling import ddim_from
    from model.diffusion.schedule import linear_schedule, q_sample

    cfg = config.unet
    schedule = linear_schedule(config.schedule)
    gen = torch.Generator().manual_seed(seed)
    v0 = video_to_model(video)
    a0 = audio_codec(config).encode(torch.from_numpy(fit_audio(audio, cfg.audio_samples))[None])
    ref = video_to_model(reference[None])[0]
    cap = torch.full((1,), caption, dtype=torch.long)
    denoiser = with_replacement(conditioned(model, cap, ref), schedule, audio=a0, generator=gen)
    x = AV(q_sample(schedule, v0, t0, torch.randn(v0.shape, generator=gen)), q_sample(schedule, a0, t0, torch.randn(a0.shape, generator=gen)))
    return video_from_model(ddim_from(denoiser, schedule, x, t0, steps).video[0])


def make_generated(diffusion: Path, caches: list[Path], out: Path, *, clips: int, steps: int = 6, seed: int = 0,
                   smooth: float = 1.0, progress: bool = True) -> Path:
    """Re-sample ``clips`` training clips with the joint model at ``diffusion`` into ``out/generated.npz``:
    ``generated`` uint8 [N, F, H, W, 3] (smoothed over time by ``smooth`` frames, as the receiver does),
    ``index`` [N] into the concatenated training segments of ``caches``, ``reference`` uint8 [N, H, W, 3]."""
    from tqdm.auto import tqdm

    from model.diffusion.checkpoint import load_model
    from model.diffusion.data import load_segments
    from model.diffusion.train import ReferencePicker
    from model.postfilter import smooth_in_time

    model, config = load_model(diffusion)
    if not getattr(config.unet, "reference", False):
        raise ValueError(f"{diffusion} has no reference input; the restorer learns a reference-conditioned model's frames")
    segments = load_segments(",".join(str(c) for c in caches), config.captions)
    picker = ReferencePicker(segments)
    rng = np.random.default_rng(seed)
    index = rng.choice(len(segments), size=min(clips, len(segments)), replace=False)
    generated, references = [], []
    for k, i in enumerate(tqdm(index, desc="re-sampling clips", disable=not progress)):
        ref = picker.pick(np.array([i]), rng)[0].transpose(1, 2, 0)
        video = segments.video[i].transpose(0, 2, 3, 1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            sampled = sdedit_clip(model, config, video, segments.audio[i], ref, int(segments.caption[i]),
                                  int(rng.integers(300, 651)), steps, seed * 100_000 + k)
        generated.append(smooth_in_time(sampled, smooth))
        references.append(ref)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "generated.npz"
    np.savez(path, generated=np.stack(generated), index=index, reference=np.stack(references),
             caches=np.array([str(c) for c in caches]))
    return path


@torch.no_grad()
def make_generated_stills(portrait: Path, stills: Path, out: Path, *, count: int, steps: int = 6, seed: int = 0,
                          batch: int = 16, progress: bool = True) -> Path:
    """The portrait model's re-sampling of ``count`` stills (noised to t0 in [200, 600], denoised by DDIM
    in ``steps`` steps with their gender's caption) into ``out/generated.npz``: ``generated`` uint8
    [N, S, S, 3] and ``index`` [N] into the stills. The portrait cleaner's inputs: the model's texture
    on a known drawing."""
    from tqdm.auto import tqdm

    from model.corpus.stills import Stills
    from model.diffusion.av import AV
    from model.diffusion.generate import video_from_model
    from model.diffusion.sampling import ddim_from
    from model.diffusion.schedule import q_sample
    from model.portrait.sample import PortraitModel
    from model.portrait.train import captions_for

    model = PortraitModel.load(portrait)
    data = Stills.load(stills)
    captions = captions_for(data, model.config)
    rng = np.random.default_rng(seed)
    index = rng.choice(len(data), size=min(count, len(data)), replace=False)
    generated = []
    for start in tqdm(range(0, len(index), batch), desc="re-sampling stills", disable=not progress):
        rows = index[start : start + batch]
        x0 = torch.from_numpy(data.images[rows]).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        t0 = int(rng.integers(200, 601))
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        cap = torch.from_numpy(captions[rows])
        denoiser = model._network(cap, 1.0)
        x = AV(q_sample(model.schedule, x0, t0, torch.randn(x0.shape, generator=gen))[:, None], torch.zeros(len(rows), 1, 0))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x = ddim_from(denoiser, model.schedule, x, t0, steps)
        generated.append(video_from_model(x.video[:, 0].float()))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "generated.npz"
    np.savez(path, generated=np.concatenate(generated), index=index)
    return path


@torch.no_grad()
def make_lipsynced(generated: Path, restore: Path, lipsync: Path, caches: list[Path], out: Path, *,
                   progress: bool = True) -> Path:
    """The restorer's second-pass inputs: each re-sampled clip of ``generated`` (``make_generated``)
    restored by ``restore`` with its reference, then lip-synced by ``lipsync`` with the clip's own audio,
    as the receiver does before its last clean-up. Writes ``out/generated.npz`` with the same ``index``,
    ``reference`` and ``caches`` and a ``stage`` of ``"lipsync"``. Targets stay the real frames, whose
    mouths follow that audio: a restorer trained on these keeps the lip-sync network's mouth shape and
    gives it the real mouth's sharpness."""
    from tqdm.auto import tqdm

    from model.diffusion.data import load_segments
    from model.lipsync import LipSync
    from model.restore.restorer import Restorer

    with np.load(generated) as data:
        clips, index, reference = data["generated"], data["index"], data["reference"]
        sources = [str(c) for c in data["caches"]]
    if [str(Path(c).expanduser()) for c in caches] != sources:
        raise ValueError(f"{generated} indexes the caches {sources}, not {[str(c) for c in caches]}")
    segments = load_segments(",".join(sources))
    restorer = Restorer.load(restore)
    syncer = LipSync.load(lipsync)
    synced = np.empty_like(clips)
    for k in tqdm(range(len(index)), desc="restoring and lip-syncing clips", disable=not progress):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            restored = restorer.restore(clips[k], reference[k])
        synced[k] = syncer.refine(restored, segments.audio[index[k]])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "generated.npz"
    np.savez(path, generated=synced, index=index, reference=reference, caches=np.array(sources), stage=np.array("lipsync"))
    return path
