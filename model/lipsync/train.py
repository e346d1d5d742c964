"""Training Wav2Lip's SyncNet expert, then the generator with the frozen expert (and optionally the GAN).

* ``syncnet``: binary cross-entropy on the cosine similarity of the audio and face embeddings of
  in-sync (label 1) and off-sync (label 0) 5-frame windows (Wav2Lip's ``color_syncnet_train.py``).
* ``lipsync``: ``(1 - w) * L1(generated, target) + w * BCE(cos(expert(mel), expert(generated)), 1)``
  with the expert frozen in eval mode, ``w = sync_weight`` (Wav2Lip: 0.03). With ``disc_weight`` >
  0, Wav2Lip's GAN variant (``hq_wav2lip_train.py``): ``(1 - w - d) * L1 + w * sync + d * BCE(D(gen),
  1)`` with ``d = disc_weight`` (0.07 there), and the visual quality discriminator ``D`` trained on
  each batch's true frames (label 1) and generated ones (label 0), Adam betas (0.5, 0.999).

Shared: AdamW; optional EMA of the weights (what is saved as ``model.safetensors`` when on); a
resumable training state every ``save_every`` steps; batches drawn from a per-(seed, step) random
stream, so a resumed run sees the batches the uninterrupted one would have; ``loss.csv``,
``val.csv``, ``loss.png``; a model card ``README.md``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from model.checkpoint import CONFIG, EMA, STATE_META, load_train_state, save_train_state
from model.lipsync.checkpoint import load_model, save_model
from model.lipsync.data import LipData, lower_halves
from model.lipsync.networks import LipSyncConfig, SyncNet, Wav2Lip, build, count_parameters
from model.plots import loss_plot

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the architecture lives in the network's config.json)."""

    steps: int = 20_000
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0
    ema_decay: float = 0.0  # 0 = no EMA
    sync_weight: float = 0.03  # lipsync only
    edge_weight: float = 0.0  # lipsync only: L1 on the frames' horizontal and vertical differences (sharp edges; not in Wav2Lip)
    disc_weight: float = 0.0  # lipsync only: the visual quality discriminator's weight (Wav2Lip's GAN: 0.07)
    disc_lr: float = 1e-4
    # steps at the start in which only the discriminator learns (the generator's adversarial term is
    # off): a fine-tuned generator's L1 is small, and a discriminator still at chance then steers it
    disc_warmup: int = 0
    # lipsync only: the expert sees each generated crop brought down to this side and back up, the
    # sharpness of the crops it learnt from (64-pixel frames' faces: ~61 px); 0 = as generated. For a
    # generator trained on sharper crops (faces at 256) than its expert
    expert_size: int = 0
    min_shift: int = 2  # syncnet: off-sync windows are at least this many frames away
    other_segment: float = 0.0  # syncnet: share of off-sync audio taken from another segment
    grad_clip: float = 1.0  # 0 = no clipping
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    init: str = ""  # start a new run from these weights (a model folder); ignored when resuming

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.save_every, self.log_every, self.min_shift) < 1:
            raise ValueError("steps, batch_size, save_every, log_every and min_shift must be positive")
        if self.lr <= 0 or not 0 <= self.ema_decay < 1 or not 0 <= self.sync_weight <= 1:
            raise ValueError("lr must be positive, ema_decay in [0, 1) and sync_weight in [0, 1]")
        if not 0 <= self.expert_size <= 96:
            raise ValueError("expert_size must be in [0, 96] (0 = off)")
        if self.edge_weight < 0 or self.disc_weight < 0 or self.sync_weight + self.disc_weight >= 1 or self.disc_lr <= 0:
            raise ValueError("edge_weight and disc_weight must be >= 0, sync_weight + disc_weight < 1, disc_lr > 0")
        if not 0 <= self.other_segment <= 1:
            raise ValueError("other_segment must be in [0, 1]")


def cosine_bce(audio: Tensor, face: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
    """Wav2Lip's sync loss: BCE of the cosine similarity (unit embeddings) against the label."""
    d = (audio * face).sum(dim=1).clamp(1e-6, 1 - 1e-6)  # [B]
    return F.binary_cross_entropy(d, label), d


# -- one step each -------------------------------------------------------------------------------
def syncnet_loss(net: SyncNet, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, float]]:
    mel, faces, label = batch
    loss, d = cosine_bce(*net(mel, faces), label)
    acc = ((d > 0.5).float() == label).float().mean().item()
    return loss, {"accuracy": acc}


def as_expert_sees(gen: Tensor, size: int) -> Tensor:
    """Generated crops ``[B, 3, T, H, W]`` brought down to ``size`` px (area) and back (bilinear, as
    ``face.crop`` enlarges a small box): what the expert saw in training. ``size`` 0: unchanged."""
    if not size or size >= gen.shape[-1]:
        return gen
    b, c, t, h, w = gen.shape
    flat = gen.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    flat = F.interpolate(F.interpolate(flat, size=(size, size), mode="area"), size=(h, w), mode="bilinear", align_corners=False)
    return flat.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


def lipsync_loss(net: Wav2Lip, expert: SyncNet, sync_weight: float, batch: tuple[Tensor, ...],
                 edge_weight: float = 0.0, disc: nn.Module | None = None, disc_weight: float = 0.0,
                 keep: dict | None = None, expert_size: int = 0) -> tuple[Tensor, dict[str, float]]:
    """Wav2Lip's generator loss, ``(1 - w) L1 + w sync``; with ``edge_weight`` the L1 also covers the
    frames' horizontal and vertical differences (as the restorer's loss does): a blurred mouth costs
    more than under L1 alone, which prefers the average of the mouths the audio allows. With ``disc``,
    the GAN variant's ``(1 - w - d) L1 + w sync + d BCE(disc(gen), 1)``; ``keep`` receives the
    generated frames (for the discriminator's own step)."""
    mels, inputs, target, sync_mel = batch
    gen = net(mels, inputs)  # [B, 3, 5, 96, 96]
    if keep is not None:
        keep["gen"] = gen
    l1 = F.l1_loss(gen, target)
    if edge_weight:
        l1 = l1 + edge_weight * sum(F.l1_loss(gen.diff(dim=d), target.diff(dim=d)) for d in (-1, -2))
    a, v = expert(sync_mel, lower_halves(as_expert_sees(gen, expert_size).permute(0, 2, 1, 3, 4)))
    sync, _ = cosine_bce(a, v, torch.ones(len(a), device=a.device))
    if disc is None:
        loss = (1 - sync_weight) * l1 + sync_weight * sync
        return loss, {"l1": l1.item(), "sync": sync.item()}
    pred = disc(gen)
    fool = F.binary_cross_entropy(pred, torch.ones_like(pred))
    loss = (1 - sync_weight - disc_weight) * l1 + sync_weight * sync + disc_weight * fool
    return loss, {"l1": l1.item(), "sync": sync.item(), "fool": fool.item()}


def disc_loss(disc: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, float]]:
    """The discriminator's step: true frames are real (1), generated ones fake (0)."""
    p_real, p_fake = disc(real), disc(fake.detach())
    loss = F.binary_cross_entropy(p_real, torch.ones_like(p_real)) + F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake))
    return loss, {"disc": loss.item(), "real": p_real.mean().item(), "fake": p_fake.mean().item()}


@torch.no_grad()
def evaluate_syncnet(net: SyncNet, data: LipData, *, min_shift: int = 2, batch: int = 64, device="cpu") -> dict[str, float]:
    """On a fixed validation set of in-sync and same-segment off-sync windows: accuracy (cosine > 0.5
    for in-sync, <= 0.5 off-sync), BCE, and the AUC (chance that an in-sync pair scores above an
    off-sync one: what the offset search relies on, independent of the 0.5 threshold)."""
    was = net.training
    net.eval()
    items = data.sync_eval_set(min_shift=min_shift)
    losses, correct, sims, labels = [], 0.0, [], []
    for k in range(0, len(items), batch):
        n, s, a, y = (np.array(c) for c in zip(*items[k:k + batch]))
        mel, faces, label = (t.to(device) for t in data._sync_items(n, s, a, y))
        loss, d = cosine_bce(*net(mel, faces), label)
        losses.append(loss.item() * len(label))
        correct += ((d > 0.5).float() == label).float().sum().item()
        sims.append(d.cpu().numpy())
        labels.append(y)
    net.train(was)
    d, y = np.concatenate(sims), np.concatenate(labels)
    pos, neg = d[y > 0], d[y == 0]
    auc = float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    return {"val_loss": sum(losses) / len(items), "val_accuracy": correct / len(items), "val_auc": auc}


@torch.no_grad()
def evaluate_lipsync(net: Wav2Lip, expert: SyncNet, data: LipData, *, batch: int = 16, device="cpu",
                     expert_size: int = 0) -> dict[str, float]:
    """Validation L1 and expert sync loss (and the expert's mean cosine) on fixed windows."""
    was = net.training
    net.eval()
    items = data.gen_eval_set()
    l1s, syncs, cos = [], [], []
    for k in range(0, len(items), batch):
        n, s, r = (np.array(c) for c in zip(*items[k:k + batch]))
        mels, inputs, target, sync_mel = (t.to(device) for t in data._gen_items(n, s, r))
        gen = net(mels, inputs)
        l1s.append(F.l1_loss(gen, target).item() * len(n))
        a, v = expert(sync_mel, lower_halves(as_expert_sees(gen, expert_size).permute(0, 2, 1, 3, 4)))
        sync, d = cosine_bce(a, v, torch.ones(len(a), device=a.device))
        syncs.append(sync.item() * len(n))
        cos.append(d.sum().item())
    net.train(was)
    total = len(items)
    return {"val_l1": sum(l1s) / total, "val_sync": sum(syncs) / total, "val_cosine": sum(cos) / total}


# -- the loop --------------------------------------------------------------------------------------
def run_training(
    config: LipSyncConfig,
    train: TrainConfig,
    data: LipData,
    out_dir: str | Path,
    *,
    val: LipData | None = None,
    expert_dir: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) the network ``config`` describes into ``out_dir``; returns the last log row."""
    out = Path(out_dir)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(train.seed)
    net = build(config).to(dev)
    expert = None
    disc = disc_optimizer = None  # Wav2Lip's visual quality discriminator (GAN variant), when disc_weight > 0
    kept: dict = {}
    if config.kind == "wav2lip":
        if expert_dir is None:
            raise ValueError("training the lip-sync generator needs a trained SyncNet expert (--syncnet DIR)")
        expert, _ = load_model(expert_dir, dev, kind="syncnet")
        for p in expert.parameters():
            p.requires_grad_(False)
        if train.disc_weight > 0:
            disc = build(replace(config, kind="disc", name=f"disc-{config.name}")).to(dev).train()
            disc_optimizer = torch.optim.AdamW(disc.parameters(), lr=train.disc_lr, betas=(0.5, 0.999), weight_decay=0.0)
        def loss_fn(m, b, step):
            weight = train.disc_weight if step >= train.disc_warmup else 0.0
            return lipsync_loss(m, expert, train.sync_weight, b, train.edge_weight, disc, weight, kept, train.expert_size)
        draw = lambda rng: data.gen_batch(rng, train.batch_size)  # noqa: E731
        columns = ["l1", "sync"] + (["fool", "disc", "real", "fake"] if disc is not None else [])
    else:
        loss_fn = lambda m, b, step: syncnet_loss(m, b)  # noqa: E731
        draw = lambda rng: data.sync_batch(rng, train.batch_size, min_shift=train.min_shift,  # noqa: E731
                                           other_segment=train.other_segment)
        columns = ["accuracy"]

    resuming = (out / STATE_META).is_file()
    if train.init and not resuming:  # before the EMA is made, so that it starts from these weights too
        initial, init_config = load_model(train.init, dev, kind=config.kind)
        if init_config != config:
            raise ValueError(f"{train.init} holds a {init_config.name} network, this run trains {config.name}: "
                             "drop --preset (the run takes the weights' architecture) or pick other weights")
        net.load_state_dict(initial.state_dict())
        logger.info("starting from the weights in %s", train.init)
    optimizer = torch.optim.AdamW(net.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    ema = EMA(net, train.ema_decay) if train.ema_decay > 0 else None
    start = 0
    meta: dict = {}
    if resuming:
        meta = load_train_state(out, module=net, optimizer=optimizer, ema=ema)
        for group in optimizer.param_groups:  # this command's --lr/--weight-decay, not the saved ones
            group["lr"], group["weight_decay"] = train.lr, train.weight_decay
        start = int(meta["step"])
        if disc is not None and (out / "disc" / STATE_META).is_file():
            load_train_state(out / "disc", module=disc, optimizer=disc_optimizer, ema=None)
        logger.info("resuming %s at step %d", out, start)
    if start > 0 and meta.get("init"):  # the model card keeps saying where a fine-tuned run started
        train = replace(train, init=meta["init"])
    if start >= train.steps:
        logger.info("%s is already at step %d >= %d", out, start, train.steps)
        return {"step": start}
    out.mkdir(parents=True, exist_ok=True)
    loss_csv, val_csv = out / "loss.csv", out / "val.csv"
    _restart_csv(loss_csv, ["step", "loss", *columns, "lr", "steps_per_s"], start)
    _restart_csv(val_csv, ["step", *(["val_loss", "val_accuracy", "val_auc"] if expert is None else ["val_l1", "val_sync", "val_cosine"])], start)

    last: dict = {}
    last_val: dict = {}

    def save(step: int) -> None:
        nonlocal last_val
        weights = ema.shadow if ema is not None else net.state_dict()
        if val is not None:
            probe = build(config).to(dev)
            probe.load_state_dict(weights)
            last_val = (evaluate_syncnet(probe, val, min_shift=train.min_shift, device=dev) if expert is None
                        else evaluate_lipsync(probe, expert, val, device=dev, expert_size=train.expert_size))
            with open(val_csv, "a", newline="") as fh:
                csv.writer(fh).writerow([step, *(f"{v:.6f}" for v in last_val.values())])
            if expert is not None:
                _write_samples(out / "samples.png", probe, val, dev)
        save_model(out, weights, config)
        if disc is not None:
            save_train_state(out / "disc", module=disc, optimizer=disc_optimizer, ema=None, meta={"step": step})
        save_train_state(out, module=net, optimizer=optimizer, ema=ema,
                         meta={"step": step, "seed": train.seed, "train": asdict(train), "init": train.init,
                               "expert": str(expert_dir) if expert_dir else None})
        _write_curve(out)
        _write_card(out, config, train, step, len(data), len(val) if val is not None else 0, last, last_val, expert_dir,
                    count_parameters(net))

    net.train()
    bar = tqdm(total=train.steps, initial=start, desc=f"train {config.name}", disable=not progress, dynamic_ncols=True)
    window: list[tuple[float, dict[str, float]]] = []
    tick = time.perf_counter()
    for step in range(start, train.steps):
        rng = np.random.default_rng([train.seed, step])
        batch = tuple(t.to(dev) for t in draw(rng))
        if disc is not None:
            disc.requires_grad_(False)  # the generator's step moves only the generator
        loss, parts = loss_fn(net, batch, step)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss is {loss.item()} at step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train.grad_clip > 0:
            nn.utils.clip_grad_norm_(net.parameters(), train.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update(net, step)
        if disc is not None:  # the discriminator's step, on this batch's true and generated frames
            disc.requires_grad_(True)
            d_loss, d_parts = disc_loss(disc, batch[2], kept.pop("gen"))
            disc_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            disc_optimizer.step()
            parts = {**parts, **d_parts}
        window.append((loss.item(), parts))
        done = step + 1
        bar.update(1)
        if done % train.log_every == 0 or done == train.steps:
            now = time.perf_counter()
            rate = len(window) / max(now - tick, 1e-9)
            tick = now
            mean = float(np.mean([w[0] for w in window]))
            extras = {k: float(np.mean([w[1][k] for w in window])) for k in columns}
            window.clear()
            last = {"step": done, "loss": mean, **extras, "steps_per_s": rate}
            bar.set_postfix(loss=f"{mean:.4f}", **{k: f"{v:.3f}" for k, v in extras.items()}, refresh=False)
            with open(loss_csv, "a", newline="") as fh:
                csv.writer(fh).writerow([done, f"{mean:.6f}", *(f"{extras[k]:.6f}" for k in columns), f"{train.lr:.3g}", f"{rate:.4f}"])
        if done % train.save_every == 0 or done == train.steps:
            save(done)
            if last_val:
                logger.info("step %d: %s", done, ", ".join(f"{k} {v:.4f}" for k, v in last_val.items()))
    bar.close()
    return {**last, **last_val}


@torch.no_grad()
def _write_samples(path: Path, net: Wav2Lip, data: LipData, device) -> None:
    """A picture to look at: for 4 validation windows, the middle frame as it is, masked, generated."""
    import cv2  # noqa: PLC0415

    items = data.gen_eval_set()[:: max(1, len(data.gen_eval_set()) // 4)][:4]
    n, s, r = (np.array(c) for c in zip(*items))
    mels, inputs, target, _ = (t.to(device) for t in data._gen_items(n, s, r))
    net.eval()
    gen = net(mels, inputs)  # [B, 3, 5, 96, 96]
    mid = 2
    rows = [target[:, :, mid], inputs[:, :3, mid], gen[:, :, mid]]
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)  # [3, 3*96, B*96]
    img = (grid.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())
    img = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    tmp = path.with_name(path.name + ".tmp.png")
    cv2.imwrite(str(tmp), img[..., ::-1])
    tmp.replace(path)


def _restart_csv(path: Path, header: list[str], start: int) -> None:
    """New file at step 0; on resume keep only rows up to the checkpoint (a killed run logs ahead)."""
    if start == 0 or not path.is_file():
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerow(header)
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *(r for r in rows[1:] if r and int(r[0]) <= start)])


def _write_curve(folder: Path) -> None:
    def rows(name: str) -> list[dict]:
        path = folder / name
        if not path.is_file():
            return []
        with open(path) as fh:
            return list(csv.DictReader(fh))

    train_rows, val_rows = rows("loss.csv"), rows("val.csv")
    if not train_rows:
        return
    steps = [int(r["step"]) for r in train_rows]
    curves = [(f"train {key}", steps, [float(r[key]) for r in train_rows], "-")
              for key in train_rows[0] if key in ("loss", "l1", "sync")]
    curves += [(key, [int(r["step"]) for r in val_rows], [float(r[key]) for r in val_rows], "o-")
               for key in (val_rows[0] if val_rows else {}) if key in ("val_loss", "val_l1", "val_sync")]
    loss_plot(folder / "loss.png", curves)


def _write_card(folder: Path, config: LipSyncConfig, train: TrainConfig, step: int, n_train: int, n_val: int,
                last: dict, last_val: dict, expert_dir, params: int) -> None:
    what = (f"Wav2Lip generator ({'GAN variant: visual quality discriminator' if train.disc_weight else 'no GAN'}), "
            "trained with a frozen SyncNet expert") if config.kind == "wav2lip" \
        else "SyncNet_color lip-sync expert (Wav2Lip layout)"
    fmt = lambda d: ", ".join(f"{k} {v:.4g}" for k, v in d.items() if k != "step") or "n/a"  # noqa: E731
    lines = [
        f"# {config.name}: {what}",
        "",
        f"- weights: `model.safetensors` ({'EMA ' + str(train.ema_decay) if train.ema_decay else 'raw'}), "
        f"architecture: `config.json` (width {config.width}, residual units per stage "
        f"{'official' if config.residuals is None else config.residuals}; {params:,} parameters)",
        f"- data: {n_train} one-second training segments (16 fps, 16 kHz), {n_val} validation segments; "
        "96x96 face crops from one Haar box per segment; mel windows as Wav2Lip's audio.py, centred on each frame",
        *([f"- started from the weights in `{train.init}`"] if train.init else []),
        f"- training: {step} of {train.steps} steps, batch {train.batch_size}, AdamW lr {train.lr:g}, seed {train.seed}"
        + (f", sync weight {train.sync_weight}" + (f", edge weight {train.edge_weight}" if train.edge_weight else "")
           + (f", discriminator weight {train.disc_weight} (lr {train.disc_lr:g}, alone for the first {train.disc_warmup} steps)"
              if train.disc_weight else "")
           + f", expert `{expert_dir}`" if config.kind == "wav2lip" else
           f", off-sync windows >= {train.min_shift} frames away ({train.other_segment:.0%} from other segments)"),
        f"- last logged (train): {fmt(last)}",
        f"- validation: {fmt(last_val)} (per save: `val.csv`; curves: `loss.csv`, `loss.png`)",
        "- limits: trained on the synthetic drawn-face corpus only; one face box per clip; 16 fps; "
        "not a substitute for the official weights on real faces",
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines))


def load_or_default_config(out: Path, kind: str, preset_name: str | None, init: str | Path | None = None) -> LipSyncConfig:
    """The run's own config when resuming (it must agree with the preset asked for), else the preset,
    else the architecture of the ``init`` weights a new run starts from, else ``small``."""
    from model.lipsync.networks import load_config, preset  # noqa: PLC0415

    want = preset(kind, preset_name) if preset_name else None
    if (out / STATE_META).is_file() and (out / CONFIG).is_file():
        have = load_config(out / CONFIG)
        if have.kind != kind:
            raise ValueError(f"{out} holds a {have.kind} run, not {kind}")
        if want is not None and want != have:
            raise ValueError(f"{out} holds a run with another architecture ({have.name}); pick a new --out or drop --preset")
        return have
    if want is None and init and (Path(init).expanduser() / CONFIG).is_file():
        return load_config(Path(init).expanduser() / CONFIG)
    return want or preset(kind, "small")


def read_meta(out: Path) -> dict:
    return json.loads((out / STATE_META).read_text()) if (out / STATE_META).is_file() else {}
