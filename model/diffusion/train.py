"""Training loops for the joint diffusion model (Eq. 5) and the noisy joint classifier (section V-B).

One loop serves both; a task supplies the loss. Features: fixed lr 1e-4 for the diffusion model (the
paper), AdamW lr 1e-3 with linear decay and weight decay 0.05 for the classifier; EMA weights;
``model.safetensors`` + ``config.json`` (EMA weights) and a resumable training state every
``save_every`` steps; a progress bar with loss and steps/s; ``loss.csv`` and ``loss.png``;
CPU or CUDA (bf16 autocast on CUDA); several processes through ``torchrun`` (DDP, gloo on CPU, nccl
on CUDA); every process draws its own batches.

Batches are drawn from a per-(seed, rank, step) random stream, so a resumed run sees exactly the
batches and noise the uninterrupted run would have seen.

The loop's parts live beside it: ``batches.py`` (corpus rows -> network inputs, reference faces),
``losses.py`` (Eq. 5, the classifier's cross-entropy), ``audio_alone.py`` (the audio-alone stage),
``launch.py`` (torchrun's processes, a graceful stop) and ``model/checkpoint.py`` (weights, EMA,
training state).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from model.checkpoint import EMA, WEIGHTS, load_train_state, save_train_state
from model.diffusion.audio_alone import audio_alone_steps
from model.diffusion.av import AV
from model.diffusion.batches import ReferencePicker, augment_pair, crop_window, to_model_batch
from model.diffusion.checkpoint import build_model, save_model
from model.diffusion.config import NULL_CAPTION, ClassifierConfig, DiffusionConfig
from model.diffusion.data import Segments
from model.diffusion.launch import Dist, GracefulStop, setup_distributed
from model.diffusion.losses import LossFn, classifier_loss, diffusion_loss, drop_captions
from model.diffusion.schedule import linear_schedule
from model.diffusion.unet import audio_branch_only, audio_only_parameters
from model.plots import LossLog

# the loop's parts, importable from here as before the split
__all__ = [
    "Dist", "GracefulStop", "LossFn", "ReferencePicker", "TrainConfig", "audio_alone_steps", "augment_pair",
    "classifier_loss", "crop_window", "diffusion_loss", "drop_captions", "run_training", "setup_distributed",
    "to_model_batch",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (not architecture: that lives in the model's config.json)."""

    steps: int = 50_000
    batch_size: int = 8  # per process
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_decay: bool = False  # linear decay to 0 over ``steps``
    ema_decay: float = 0.9999
    caption_dropout: float = 0.1  # diffusion: share of captions replaced by the null caption
    grad_clip: float = 1.0
    save_every: int = 5_000
    log_every: int = 10
    seed: int = 0
    amp: bool = True  # bf16 autocast (CUDA, and CPUs: about 4x float32 where AMX exists)
    # Train on random windows of this many frames (and the audio under them) instead of whole
    # one-second clips; 0 = whole clips (the paper). The network is convolutional in time and its
    # cross-attention is local in time, so the same weights sample whole clips. On a CPU this buys
    # more distinct faces per second of compute: frames within a clip are nearly alike.
    crop_frames: int = 0
    # A model.safetensors (or its folder) to start a new run from, e.g. to fine-tune; ignored on resume.
    init: str = ""
    # The audio branch's parameters (every name with "audio") learn at lr times this: a run that
    # fine-tunes a trained video branch into a new audio representation (another ``audio_features``)
    # can move the audio fast and the video slowly. 1 = one learning rate, as in the paper.
    audio_lr_scale: float = 1.0
    # "both" (the paper: one loss, Eq. 5 summed over the modalities) or "audio": only the audio
    # branch trains, on the audio loss (``model.diffusion.unet.audio_branch_only``). On a CPU a step
    # then costs about a third of a joint one, for a run whose video is already trained and whose
    # audio (e.g. a new ``audio_features``) is not. The video loss is still logged.
    train_branch: str = "both"
    # After every joint step, this many optimizer steps on the audio branch alone, with no video
    # (``AVUNet.forward_audio``: the audio's cross-attention adds nothing), each on
    # ``audio_alone_batch`` whole clips' audio; 0 = none (the paper). A video-free audio step costs a
    # fraction of a joint one on a CPU, so the audio branch sees many more clips per hour; the joint
    # steps keep teaching it to read the video and the video to read it.
    audio_alone_steps: int = 0
    audio_alone_batch: int = 64
    # A network with a reference input (``UNetConfig.reference``) sees, for each clip, one frame of
    # another clip of the same person; this share of clips gets none (reference dropout), so the same
    # weights keep every mode of the paper. Clips with a reference get the same random colour change
    # and mirror image as their reference (``reference_augment``): the network learns to copy the
    # person it is shown, not to recall the corpus's few dozen people.
    reference_dropout: float = 0.2
    reference_augment: bool = True
    # A network that reads description vectors (``UNetConfig.attribute_slots``; free-form captions):
    # each attribute of a clip's full description is left "not said" with this chance (on top of
    # ``caption_dropout``'s whole-caption null), so it learns every partial description a caption gives.
    attribute_dropout: float = 0.5
    # ... and its linear map over the vector learns at lr times this: converted from a caption table,
    # every attribute but gender starts at zero, and at a fine-tune's small lr AdamW would move it by
    # about lr per step (the portrait model's fine-tune used 20).
    condition_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.save_every < 1 or self.log_every < 1:
            raise ValueError("steps, batch_size, save_every and log_every must be positive")
        if self.lr <= 0 or not 0 <= self.caption_dropout <= 1:
            raise ValueError("lr must be positive and caption_dropout in [0, 1]")
        if self.audio_lr_scale <= 0:
            raise ValueError("audio_lr_scale must be positive")
        if self.audio_alone_steps < 0 or self.audio_alone_batch < 1:
            raise ValueError("audio_alone_steps must be >= 0 and audio_alone_batch >= 1")
        if self.train_branch not in ("both", "audio"):
            raise ValueError(f"train_branch must be 'both' or 'audio', got {self.train_branch!r}")
        if self.crop_frames < 0:
            raise ValueError("crop_frames must be >= 0 (0 = whole clips)")
        if not 0 <= self.reference_dropout <= 1:
            raise ValueError("reference_dropout must be in [0, 1]")
        if not 0 <= self.attribute_dropout <= 1 or self.condition_lr_scale <= 0:
            raise ValueError("attribute_dropout must be in [0, 1] and condition_lr_scale positive")



# -- the loop ------------------------------------------------------------------------------------------
def run_training(
    config: DiffusionConfig | ClassifierConfig,
    train: TrainConfig,
    segments: Segments,
    out_dir: str | Path,
    *,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) the model described by ``config`` into ``out_dir``; returns the last log row."""
    out = Path(out_dir)
    env = setup_distributed(device)
    torch.manual_seed(train.seed)  # same initial weights on every rank
    model = build_model(config).to(env.device)
    schedule = linear_schedule(config.schedule)
    if isinstance(config, ClassifierConfig):
        if train.train_branch != "both" or train.audio_alone_steps:
            raise ValueError("a classifier trains as a whole (train_branch='both', no audio_alone_steps)")
        segments = segments.subset(segments.caption != NULL_CAPTION)
        loss_fn = classifier_loss(schedule)
    else:
        loss_fn = diffusion_loss(schedule, train.caption_dropout, config.prediction, train.train_branch,
                                 train.attribute_dropout)

    resuming = (out / "train_state.json").is_file()
    if train.init and not resuming:
        init = Path(train.init)
        init = init / WEIGHTS if init.is_dir() else init
        state, own = _as_describing(load_file(str(init)), config), model.state_dict()
        # a changed stem or head (e.g. another audio_features) starts fresh; everything else carries over
        reshaped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
        missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in reshaped}, strict=False)
        if unexpected:
            raise ValueError(f"{init} has weights this architecture lacks: {', '.join(unexpected[:5])}")
        logger.info("starting from the weights in %s%s", init,
                    f"; new, at their initial values: {', '.join(missing)}" if missing else "")
    if train.train_branch == "audio":
        groups, lr_scales = [{"params": audio_branch_only(model)}], (train.audio_lr_scale,)
        logger.info("training the audio branch only: %d of %d parameters",
                    sum(p.numel() for p in groups[0]["params"]), sum(p.numel() for p in model.parameters()))
    else:
        groups = _param_groups(model, train.audio_lr_scale)
        lr_scales = (1.0, train.audio_lr_scale)
    condition = getattr(getattr(model, "embed", None), "condition", None)
    if condition is not None and train.condition_lr_scale != 1.0 and train.train_branch != "audio":  # its own group, last
        for group in groups:
            group["params"] = [p for p in group["params"] if p is not condition.weight]
        groups.append({"params": [condition.weight]})
        lr_scales = (*lr_scales[:len(groups) - 1], train.condition_lr_scale)
    optimizer = torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)
    alone_params = audio_only_parameters(model) if train.audio_alone_steps else []
    ema = EMA(model, train.ema_decay)
    try:
        meta = load_train_state(out, module=model, optimizer=optimizer, ema=ema) if resuming else None
    except ValueError as exc:  # e.g. a different number of optimizer groups
        raise ValueError(f"cannot resume {out} with these settings (was it trained with another "
                         f"--train-branch or --audio-lr-scale?): {exc}") from exc
    start = int(meta["step"]) if meta else 0
    if meta and meta.get("init"):  # the model card keeps saying where a fine-tuned run started
        train = replace(train, init=meta["init"])
    if meta:
        logger.info("resuming %s at step %d", out, start)
    if start >= train.steps:
        logger.info("%s is already at step %d >= %d", out, start, train.steps)
        return {"step": start}

    picker = ReferencePicker(segments) if getattr(config.unet, "reference", False) and isinstance(config, DiffusionConfig) else None
    net = model
    if env.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    # bf16 autocast on CUDA and on CPUs (oneDNN: about 4x float32 for these convolutions where AMX exists)
    use_amp = train.amp
    amp_dtype = torch.bfloat16 if env.device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    columns = ["step", "loss", *_extra_columns(config, train), "lr", "steps_per_s"]
    log = LossLog(out / "loss.csv", columns, resume_step=start, main=env.main)

    def save(step: int) -> None:
        if env.main:
            save_model(out, ema.state_dict(), config)
            save_train_state(out, module=model, optimizer=optimizer, ema=ema, meta={"step": step, "seed": train.seed, "init": train.init})
            log.plot(out / "loss.png", [(c, c) for c in columns if c.startswith("loss")])
            _write_card(out, config, train, step, len(segments), env.world, last)
        if env.world > 1:
            dist.barrier()

    model.train()
    stop = GracefulStop(enabled=env.world == 1)  # DDP ranks must stop at the same step: torchrun's kill + resume
    bar = tqdm(total=train.steps, initial=start, desc=f"train {config.name}", disable=not (progress and env.main), dynamic_ncols=True)
    window: list[tuple[float, dict[str, float]]] = []
    skipped = 0
    tick = time.perf_counter()
    last: dict = {}
    for step in range(start, train.steps):
        lr = train.lr * (1 - step / train.steps) if train.lr_decay else train.lr
        for group, scale in zip(optimizer.param_groups, lr_scales):
            group["lr"] = lr * scale
        rng = np.random.default_rng([train.seed, env.rank, step])
        idx = rng.integers(0, len(segments), size=train.batch_size)
        gen = torch.Generator(device=env.device).manual_seed(int(rng.integers(2**62)))
        x0, caption = to_model_batch(segments, idx, config, env.device)
        if 0 < train.crop_frames < config.unet.frames:
            x0 = crop_window(x0, train.crop_frames, int(rng.integers(0, config.unet.frames - train.crop_frames + 1)))
        conditions = {}
        if picker is not None:
            reference = torch.from_numpy(picker.pick(idx, rng)).to(env.device).float().div(127.5).sub(1.0)
            keep = torch.rand(len(idx), generator=gen, device=env.device) >= train.reference_dropout
            if train.reference_augment:
                video, reference = augment_pair(x0.video, reference, keep, gen)
                x0 = AV(video, x0.audio)
            conditions = {"reference": reference, "reference_keep": keep}
        with torch.autocast(env.device.type, dtype=amp_dtype, enabled=use_amp):
            loss, parts = loss_fn(net, x0, caption, gen, **conditions)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        norm = nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        if torch.isfinite(norm) or scaler.is_enabled():  # (the float16 scaler skips such steps itself)
            scaler.step(optimizer)
        else:
            # bf16 autocast on a CPU can give NaN gradients with a finite loss: on 2026-12-06 (torch
            # 2.14.1, oneDNN with AMX) in one video convolution of small-mel-ref's decoder, in about half
            # the steps, caption table or description alike. One such step would turn every weight to
            # NaN through the clipping, so it is skipped and counted; --no-amp (float32) has none
            skipped += 1
            logger.warning("step %d: non-finite gradients, step skipped (%d so far%s)", step + 1, skipped,
                           "; --no-amp trains in float32" if use_amp and env.device.type == "cpu" else "")
        scaler.update()
        if train.audio_alone_steps:
            parts["loss_audio_alone"] = audio_alone_steps(model, optimizer, alone_params, segments, config, train,
                                                          schedule, rng, gen, env)
        ema.update(model, step)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at step {step + 1}")
        window.append((loss.item(), parts))
        done = step + 1
        bar.update(1)
        if done % train.log_every == 0 or done == train.steps:
            now = time.perf_counter()
            rate = len(window) / (now - tick)
            tick = now
            mean = float(np.mean([w[0] for w in window]))
            extras = {k: float(np.mean([w[1][k] for w in window])) for k in window[0][1]}
            window.clear()
            last = {"step": done, "loss": mean, **extras, "lr": lr, "steps_per_s": rate}
            bar.set_postfix(loss=f"{mean:.4f}", steps_per_s=f"{rate:.2f}")
            log.append(last)
        if done % train.save_every == 0 or done == train.steps:
            save(done)
        elif stop.requested:
            save(done)
        if stop.requested:
            logger.info("stopped by %s at step %d; checkpoint saved, run the same command to resume", stop.requested, done)
            break
    stop.restore()
    bar.close()
    return last or {"step": train.steps}


def _as_describing(state: dict, config: DiffusionConfig | ClassifierConfig) -> dict:
    """Weights to start from: a caption-index model's converted exactly when ``config`` reads
    description vectors (``describing_from_caption_model``); anything else as it is."""
    from model.diffusion.checkpoint import describing_from_caption_model

    if not config.unet.describes:
        return state
    index_config = replace(config, unet=replace(config.unet, attribute_slots=0))
    if isinstance(config, ClassifierConfig):
        head = state.get("head.weight")
        if head is None or head.shape[0] != index_config.num_classes:
            return state
    elif "embed.caption.weight" not in state:
        return state
    logger.info("converting the caption-index weights to read description vectors")
    return describing_from_caption_model(state, index_config)[0]


def _param_groups(model: nn.Module, audio_lr_scale: float) -> list[dict]:
    """One group, or (with a scale) the rest and then the audio branch (``TrainConfig.audio_lr_scale``):
    the branch's own parameters (``audio_only_parameters``). Until 2026-12-06 the branch was picked by
    parameter name, which also put the video's cross-attention to the audio (``kv_audio``,
    ``norm_audio``) in it; runs saved with that grouping and a scale do not resume."""
    if audio_lr_scale == 1.0:
        return [{"params": list(model.parameters())}]
    audio = {id(p) for p in audio_only_parameters(model)}
    params = list(model.parameters())
    return [{"params": [p for p in params if id(p) not in audio]}, {"params": [p for p in params if id(p) in audio]}]


def _write_card(folder: Path, config, train: TrainConfig, step: int, segments: int, world: int, last: dict) -> None:
    """A short model card beside the weights: data, steps, metrics, limits."""
    kind = "noisy joint caption classifier" if isinstance(config, ClassifierConfig) else "joint audio-video diffusion model"
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k not in ("step", "lr")) or "n/a"
    (folder / "README.md").write_text(
        f"# {config.name}: {kind}\n\n"
        f"- weights: `model.safetensors` (EMA, decay {train.ema_decay}), architecture: `config.json`\n"
        f"- data: {segments} segments of {config.unet.frames} frames {config.unet.image_size}x{config.unet.image_size} "
        f"+ {config.unet.audio_samples} audio samples"
        f"{f' (diffused as a {config.unet.mel_bins}-bin log-mel spectrogram, audio_codec.py)' if config.unet.audio_features == 'mel' else ''}\n"
        f"- training: {step} of {train.steps} steps, batch {train.batch_size} x {world} process(es)"
        f"{f' of {train.crop_frames}-frame windows' if train.crop_frames else ''}, lr {train.lr:g}"
        f"{f' (audio branch x{train.audio_lr_scale:g})' if train.audio_lr_scale != 1 else ''}"
        f"{', audio branch only (video frozen)' if train.train_branch == 'audio' else ''}"
        f"{f', then {train.audio_alone_steps} audio-alone steps of {train.audio_alone_batch} whole clips after each' if train.audio_alone_steps else ''}, "
        f"weight decay {train.weight_decay:g}, seed {train.seed}\n"
        f"{f'- network target: {config.prediction} (model/diffusion/prediction.py)' + chr(10) if not isinstance(config, ClassifierConfig) else ''}"
        f"{f'- started from the weights in `{train.init}`' + chr(10) if train.init else ''}"
        f"- last logged: {metrics} (full curve: `loss.csv`, `loss.png`)\n"
        + (f"- captions: description vectors ({config.unet.attribute_slots} slots, free-form captions), "
           + ("each clip's full description, a cross-entropy per attribute" if isinstance(config, ClassifierConfig) else
              f"each attribute unsaid {train.attribute_dropout:.0%} of the time, {train.caption_dropout:.0%} null")
           + (f"; the linear map over them at lr x{train.condition_lr_scale:g}" if train.condition_lr_scale != 1 else "") + "\n"
           if config.unet.describes else "")
        + f"- limits: trained only on the data above; "
        f"{'the corpus people' + chr(39) + 's attributes' if config.unet.describes else 'two captions (man / woman)'}; one-second chunks\n"
    )


def _extra_columns(config: DiffusionConfig | ClassifierConfig, train: TrainConfig) -> list[str]:
    if isinstance(config, ClassifierConfig):
        return ["accuracy"]
    return ["loss_video", "loss_audio", *(["loss_audio_alone"] if train.audio_alone_steps else [])]

