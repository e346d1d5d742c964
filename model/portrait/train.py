"""Training loop of the portrait model: Eq. 5 on still images, v target, min-SNR weighting.

Same habits as the joint model's loop (``model/diffusion/train.py``): EMA weights written as
``model.safetensors`` + ``config.json``, a resumable training state, ``loss.csv`` and ``loss.png``, a
sample sheet (``samples.png``) at every save so the run can be looked at, a progress bar, SIGTERM /
Ctrl-C saves and stops (run the same command to resume), CPU or CUDA (bf16 autocast), several
processes through ``torchrun`` (each draws its own batches from a per-(seed, rank, step) stream).

Optional (``min_snr_gamma`` > 0; off by default): the min-SNR-gamma loss weight (Hang et al. 2023,
"Efficient diffusion training via min-SNR weighting strategy"), ``min(SNR, gamma) / (SNR + 1)`` on
the v loss. On this model it starved the near-clean steps (see ``PortraitTrainConfig``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from model.checkpoint import EMA, load_train_state, save_train_state
from model.corpus.stills import Stills
from model.describe.conditioning import drop_descriptions
from model.diffusion.config import NULL_CAPTION
from model.diffusion.schedule import extract, linear_schedule, q_sample, v_target
from model.diffusion.launch import GracefulStop, setup_distributed
from model.plots import LossLog
from model.portrait.config import PortraitConfig
from model.portrait.network import PortraitUNet

logger = logging.getLogger(__name__)

GENDER_CAPTION = {0: "A man is talking", 1: "A woman is talking"}


@dataclass(frozen=True)
class PortraitTrainConfig:
    steps: int = 20_000
    batch_size: int = 32  # per process
    lr: float = 2e-4
    warmup: int = 200
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    # description models: each attribute is left "not said" with this chance (captions name a few)
    attribute_dropout: float = 0.5
    init: str = ""  # a new run starts from these weights (a model folder); ignored when resuming
    # description models: the learning rate of the description's linear map, as a multiple of ``lr``.
    # It starts at zero for every attribute but gender (``describing_from_caption_model``), and AdamW
    # moves a weight by about lr per step: at 1.5e-4 the new columns were still 0.005 after 800 steps,
    # against the gender columns' 0.75
    condition_lr_scale: float = 20.0
    # 0 = the plain v loss (the default). A first run with gamma 5 left the near-clean steps almost
    # untrained after 400 steps (eps error 0.91 at t = 5): the weight min(SNR, 5) / (SNR + 1) all but
    # removes them, and samples kept their last noise
    min_snr_gamma: float = 0.0
    grad_clip: float = 1.0
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    amp: bool = True  # bf16 autocast on CPU and CUDA

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.save_every, self.log_every) < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size, save_every, log_every and lr must be positive")
        if not 0 <= self.caption_dropout <= 1 or not 0 <= self.attribute_dropout <= 1 or self.min_snr_gamma < 0:
            raise ValueError("caption_dropout and attribute_dropout must be in [0, 1] and min_snr_gamma >= 0")


def captions_for(stills: Stills, config: PortraitConfig) -> np.ndarray:
    """Caption index per still, from its person's gender; for a description model, the full
    description vector of its person (float32 ``[N, slots]``, every attribute said)."""
    if config.describes:
        from model.describe.attributes import SLOTS, labels_of, vector

        if config.attribute_slots != SLOTS:
            raise ValueError(f"the model reads {config.attribute_slots} description slots, this code writes {SLOTS}")
        people = np.stack([vector(labels_of(p["look"], p["gender"])) for p in stills.speakers])
        return people[stills.speaker.astype(np.int64)]
    table = np.array([config.caption_index(GENDER_CAPTION[g]) for g in (0, 1)], np.int64)
    return table[stills.gender.astype(np.int64)]


def portrait_loss(net: nn.Module, schedule, x0: Tensor, caption: Tensor, gen: torch.Generator, train: PortraitTrainConfig,
                  prediction: str) -> Tensor:
    b = x0.shape[0]
    t = torch.randint(0, schedule.timesteps, (b,), generator=gen, device=x0.device)
    noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    if caption.is_floating_point():  # a description vector
        caption = drop_descriptions(caption, train.attribute_dropout, train.caption_dropout, gen)
    else:
        drop = torch.rand(b, generator=gen, device=x0.device) < train.caption_dropout
        caption = torch.where(drop, torch.full_like(caption, NULL_CAPTION), caption)
    out = net(q_sample(schedule, x0, t, noise), t, caption).float()
    target = noise if prediction == "eps" else v_target(schedule, x0, t, noise)
    per = F.mse_loss(out, target, reduction="none").mean(dim=(1, 2, 3))  # [B]
    if train.min_snr_gamma:
        ab = extract(schedule.alphas_cumprod, t, per).float()
        snr = ab / (1 - ab)
        weight = snr.clamp(max=train.min_snr_gamma) / (snr + 1 if prediction == "v" else snr)
        per = per * weight
    return per.mean()


def train_portrait(config: PortraitConfig, train: PortraitTrainConfig, stills: Stills, out_dir: str | Path, *,
                   device: str | None = None, progress: bool = True) -> dict:
    """Train (or resume) into ``out_dir``; returns the last log row."""
    out = Path(out_dir)
    env = setup_distributed(device)
    torch.manual_seed(train.seed)
    net = PortraitUNet(config).to(env.device)
    schedule = linear_schedule(config.schedule)
    resuming = (out / "train_state.json").is_file()
    if train.init and not resuming:  # before the EMA is made, so that it starts from these weights too
        net.load_state_dict(initial_weights(train.init, config))
        logger.info("starting from the weights in %s", train.init)
    fast = [p for n, p in net.named_parameters() if n == "condition.weight"]
    rest = [p for n, p in net.named_parameters() if n != "condition.weight"]
    groups = [{"params": rest, "scale": 1.0}] + ([{"params": fast, "scale": train.condition_lr_scale}] if fast else [])
    optimizer = torch.optim.AdamW(groups, lr=train.lr, weight_decay=0.0)
    ema = EMA(net, train.ema_decay)
    meta = load_train_state(out, module=net, optimizer=optimizer, ema=ema) if resuming else None
    start = int(meta["step"]) if meta else 0
    if start >= train.steps:
        logger.info("%s is already at step %d >= %d", out, start, train.steps)
        return {"step": start}
    model = net
    if env.world > 1:
        model = nn.parallel.DistributedDataParallel(net, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    use_amp = train.amp  # bf16 autocast, on CUDA and on CPUs (oneDNN; about 4x float32 where AMX exists)
    images = stills.images
    if images.shape[1] != config.image_size:
        raise ValueError(f"stills are {images.shape[1]}x{images.shape[1]}, the model wants {config.image_size}")
    captions = captions_for(stills, config)

    log = LossLog(out / "loss.csv", ["step", "loss", "lr", "steps_per_s"], resume_step=start, main=env.main)

    last: dict = {}

    def save(step: int) -> None:
        if env.main:
            from model.portrait.sample import save_portrait_model, sample_sheet

            save_portrait_model(out, ema.state_dict(), config)
            save_train_state(out, module=net, optimizer=optimizer, ema=ema, meta={"step": step, "seed": train.seed})
            log.plot(out / "loss.png", [("loss", "loss (v)" if not train.min_snr_gamma else "loss (min-SNR weighted v)")])
            _write_card(out, config, train, step, len(stills), env.world, last)
            try:
                sample_sheet(out, out / "samples.png", device=env.device)
            except Exception:  # a picture must never stop a run
                logger.exception("could not draw the sample sheet")
        if env.world > 1:
            torch.distributed.barrier()

    net.train()
    stop = GracefulStop(enabled=env.world == 1)
    bar = tqdm(total=train.steps, initial=start, desc=f"train {config.name}", disable=not (progress and env.main), dynamic_ncols=True)
    losses: list[float] = []
    tick = time.perf_counter()
    for step in range(start, train.steps):
        lr = train.lr * min(1.0, (step + 1) / max(1, train.warmup))
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("scale", 1.0)
        rng = np.random.default_rng([train.seed, env.rank, step])
        idx = np.sort(rng.integers(0, len(images), size=train.batch_size))
        gen = torch.Generator(device=env.device).manual_seed(int(rng.integers(2**62)))
        x0 = torch.from_numpy(images[idx]).to(env.device).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        caption = torch.from_numpy(captions[idx]).to(env.device)
        with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = portrait_loss(model, schedule, x0, caption, gen, train, config.prediction)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), train.grad_clip)
        optimizer.step()
        ema.update(net, step)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at step {step + 1}")
        losses.append(loss.item())
        done = step + 1
        bar.update(1)
        if done % train.log_every == 0 or done == train.steps:
            now = time.perf_counter()
            rate = len(losses) / (now - tick)
            tick = now
            mean = float(np.mean(losses))
            losses.clear()
            last = {"step": done, "loss": mean, "lr": lr, "steps_per_s": rate}
            bar.set_postfix(loss=f"{mean:.4f}", steps_per_s=f"{rate:.2f}")
            log.append(last)
        if done % train.save_every == 0 or done == train.steps or stop.requested:
            save(done)
        if stop.requested:
            logger.info("stopped by %s at step %d; checkpoint saved, run the same command to resume", stop.requested, done)
            break
    stop.restore()
    bar.close()
    return last or {"step": train.steps}


def initial_weights(folder: str | Path, config: PortraitConfig) -> dict[str, Tensor]:
    """The weights in ``folder`` for a run of ``config``: as they are, or a caption-index model's
    turned into a description model's (``describing_from_caption_model``)."""
    from safetensors.torch import load_file

    from model.portrait.network import describing_from_caption_model

    folder = Path(folder).expanduser()
    have = PortraitConfig.load(folder / "config.json")
    state = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
    if config.describes and not have.describes:
        state, have = describing_from_caption_model(state, have)
    if have != config:
        raise ValueError(f"{folder} holds a {have.name} model of another shape than this run's {config.name}")
    return state


def _write_card(folder: Path, config: PortraitConfig, train: PortraitTrainConfig, step: int, images: int, world: int, last: dict) -> None:
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k not in ("step", "lr")) or "n/a"
    params = sum(p.numel() for p in PortraitUNet(config).parameters())
    (folder / "README.md").write_text(
        f"# {config.name}: portrait model (a call's face)\n\n"
        f"- what: a 2-D U-Net ({params / 1e6:.1f} M parameters) that draws one {config.image_size}x{config.image_size} face from a caption "
        f"({', '.join(repr(c) for c in config.captions[1:])}, or none); linear schedule T = {config.schedule.timesteps}, "
        f"{config.prediction} target; `model.safetensors` = EMA weights (decay {train.ema_decay}), `config.json` its architecture\n"
        f"- data: {images} still portraits of drawn people (`textcall corpus stills`)\n"
        f"- training: {step} of {train.steps} steps, batch {train.batch_size} x {world} process(es), lr {train.lr:g} "
        f"(warm-up {train.warmup}), {train.caption_dropout:.0%} null captions, min-SNR gamma {train.min_snr_gamma:g}, seed {train.seed}"
        + (f"; description vectors ({config.attribute_slots} slots), each attribute unsaid {train.attribute_dropout:.0%} of the time"
           if config.describes else "") + (f"; started from `{train.init}`" if train.init else "") + "\n"
        f"- last logged: {metrics} (curve: `loss.csv`, `loss.png`; samples: `samples.png`)\n"
    )
