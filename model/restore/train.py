"""Training and using the restorer (``model/restore``): L1 on pixels and on their gradients.

``train_restore`` resumes from ``out`` (``train_state.*``), shows a progress bar, writes
``model.safetensors`` (EMA) + ``config.json``, ``loss.csv`` / ``loss.png`` and ``samples.png``
(input | restored | target | reference for validation frames), bf16 autocast on CPU and CUDA;
SIGTERM / Ctrl-C saves and stops; several processes under ``torchrun`` (DDP: gloo on CPU, nccl on
CUDA; each rank draws its own batches from a per-(seed, rank, step) stream).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor
from tqdm.auto import tqdm

from model.diffusion.generate import video_from_model
from model.restore.data import synthetic_degrade
from model.restore.network import RestoreConfig, RestoreNet
from model.restore.restorer import Restorer, to_tensor  # noqa: F401  (Restorer: imported from here too)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoreTrainConfig:
    steps: int = 4000
    batch_size: int = 32
    lr: float = 1e-3
    ema_decay: float = 0.999
    gradient_weight: float = 1.0  # L1 on horizontal/vertical differences: edges, not blur
    generated_share: float = 0.5  # of each batch, from the joint model's re-sampled clips (when given)
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    amp: bool = True
    # weight of a patch discriminator's hinge loss beside L1 (ESRGAN's recipe, without its VGG term):
    # L1 alone draws the mean of the edges a soft input leaves open, a blur; 0 = L1 only
    adversarial_weight: float = 0.0

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.save_every, self.log_every) < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size, save_every, log_every and lr must be positive")
        if not 0 <= self.generated_share <= 1 or self.gradient_weight < 0 or self.adversarial_weight < 0:
            raise ValueError("generated_share must be in [0, 1], gradient_weight and adversarial_weight >= 0")


def restore_loss(out: Tensor, target: Tensor, gradient_weight: float) -> Tensor:
    loss = F.l1_loss(out, target)
    if gradient_weight:
        for dim in (-1, -2):
            loss = loss + gradient_weight * F.l1_loss(out.diff(dim=dim), target.diff(dim=dim))
    return loss


def patch_discriminator(width: int = 32) -> torch.nn.Module:
    """A PatchGAN critic (pix2pix's, spectrally normalised): real or upscaled, one score per ~40-pixel
    patch. Training only; never shipped."""
    from torch import nn
    from torch.nn.utils import spectral_norm

    layers, cin = [], 3
    for cout, stride in ((width, 2), (2 * width, 2), (4 * width, 2), (4 * width, 1)):
        layers += [spectral_norm(nn.Conv2d(cin, cout, 4, stride, 1)), nn.LeakyReLU(0.2)]
        cin = cout
    return nn.Sequential(*layers, spectral_norm(nn.Conv2d(cin, 1, 3, 1, 1)))


class Batches:
    """Training triples from segments (+ their speakers) and, optionally, generated clips: one or more
    ``generated.npz`` (``textcall corpus resample`` and ``lipsynced``), drawn from as one pool. With
    ``holdout``, that share of each file's clips is kept out of the draws (``held_out()`` gives them, for
    validation with their stored references)."""

    def __init__(self, segments, generated: Path | list[Path] | None = None, *, holdout: float = 0.0) -> None:
        from model.diffusion.train import ReferencePicker

        if not 0 <= holdout < 1:
            raise ValueError("holdout must be in [0, 1)")
        self.segments = segments
        self.picker = ReferencePicker(segments)
        self.generated = self._held = None
        paths = [generated] if isinstance(generated, (str, Path)) else list(generated or [])
        if paths:
            train, held = [], []
            for path in paths:
                with np.load(path) as data:
                    part = {k: data[k] for k in ("generated", "index", "reference")}
                if part["index"].max(initial=-1) >= len(segments.video):
                    raise ValueError(f"{path} indexes clips past the {len(segments.video)} loaded segments: other caches?")
                cut = len(part["index"]) - int(round(holdout * len(part["index"])))
                train.append({k: v[:cut] for k, v in part.items()})
                held.append({k: v[cut:] for k, v in part.items()})
            self.generated = {k: np.concatenate([p[k] for p in train]) for k in train[0]}
            if holdout:
                self._held = {k: np.concatenate([p[k] for p in held]) for k in held[0]}
        self.fixed_references = False  # draws pick a fresh reference of the speaker (held-out: the stored one)

    def held_out(self) -> Batches | None:
        """The held-out generated clips as their own (generated-only) batches, or None."""
        if self._held is None or not len(self._held["index"]):
            return None
        out = copy.copy(self)  # the same segments and speakers
        out.generated, out._held, out.fixed_references = self._held, None, True
        return out

    def draw(self, n: int, generated_share: float, rng: np.random.Generator, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        video = self.segments.video  # [N, F, C, H, W]
        frames = video.shape[1]
        n_gen = int(round(n * generated_share)) if self.generated is not None else 0
        inputs, targets, refs = [], [], []
        if n_gen:
            g = self.generated
            rows = rng.integers(0, len(g["index"]), size=n_gen)
            fs = rng.integers(0, frames, size=n_gen)
            inputs.append(to_tensor(g["generated"][rows, fs]))
            targets.append(to_tensor(video[g["index"][rows], fs].transpose(0, 2, 3, 1)))
            ref = g["reference"][rows] if self.fixed_references else self.picker.pick(g["index"][rows], rng).transpose(0, 2, 3, 1)
            refs.append(to_tensor(ref))
        m = n - n_gen
        if m:
            idx = rng.integers(0, len(video), size=m)
            fs = rng.integers(0, frames, size=m)
            target = to_tensor(video[idx, fs].transpose(0, 2, 3, 1))
            inputs.append(synthetic_degrade(target, gen))
            targets.append(target)
            refs.append(to_tensor(self.picker.pick(idx, rng).transpose(0, 2, 3, 1)))
        return torch.cat(inputs), torch.cat(refs), torch.cat(targets)


class StillBatches:
    """Pairs for the portrait cleaner (no reference: the input is its own): still portraits as targets,
    inputs from ``generated`` (the portrait model's re-sampling of them, ``make_generated_stills``)
    and synthetic degradation."""

    def __init__(self, images: np.ndarray, generated: Path | None = None) -> None:
        self.images = images  # uint8 [N, S, S, 3]
        self.generated = None
        if generated is not None:
            with np.load(generated) as data:
                keep = data["index"] < len(images)  # re-samples of held-out stills (past a prefix) stay out
                self.generated = {k: data[k][keep] for k in ("generated", "index")}

    def draw(self, n: int, generated_share: float, rng: np.random.Generator, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        n_gen = int(round(n * generated_share)) if self.generated is not None else 0
        inputs, targets = [], []
        if n_gen:
            rows = rng.integers(0, len(self.generated["index"]), size=n_gen)
            inputs.append(to_tensor(self.generated["generated"][rows]))
            targets.append(to_tensor(self.images[self.generated["index"][rows]]))
        if n - n_gen:
            target = to_tensor(self.images[rng.integers(0, len(self.images), size=n - n_gen)])
            inputs.append(synthetic_degrade(target, gen))
            targets.append(target)
        x = torch.cat(inputs)
        return x, x, torch.cat(targets)

    def held_out(self) -> None:  # the cleaner's validation stills are passed as ``val``
        return None


class DetailBatches:
    """Triples for the upscaler (``RestoreConfig.scale`` > 1): still portraits at the output size
    (``textcall corpus stills --purpose detail --size 256``). The target is a still, its reference
    another still of the same person (another pose and expression, so the mouth must come from the
    input, not the reference), its input the target area-downsampled to the network's input size and,
    for ``degraded_share`` of each batch (the trainer's ``generated_share``), made soft and mottled as
    the call's 64-pixel frames are. Each pair gets one random colour change (channel order, gain,
    offset) and mirror image, so colours are copied from the reference rather than recalled;
    ``reference_dropout`` of the references are all zeros (none), so a face alone can be upscaled.
    With ``align`` each reference is warped onto its input's pose (``model/restore/align.py``)."""

    def __init__(self, images: np.ndarray, speaker: np.ndarray, *, input_size: int = 64, reference_dropout: float = 0.15,
                 align: bool = False) -> None:
        if len(images) != len(speaker) or not len(images):
            raise ValueError("images and speaker must be the same non-zero length")
        if images.shape[1] % input_size:
            raise ValueError(f"stills of {images.shape[1]} px do not downsample to {input_size} px")
        self.images, self.speaker = images, np.asarray(speaker)
        self.generated = None  # (the restorer's batches may hold generated clips; these never do)
        self.input_size, self.reference_dropout, self.align = input_size, reference_dropout, align
        order = np.argsort(self.speaker, kind="stable")
        sorted_speakers = self.speaker[order]
        self._order = order  # still indices grouped by person
        self._start = np.searchsorted(sorted_speakers, self.speaker, side="left")  # each still's group start
        self._count = np.searchsorted(sorted_speakers, self.speaker, side="right") - self._start
        self._rank = np.empty(len(order), np.int64)  # each still's place in its group
        self._rank[order] = np.arange(len(order)) - self._start[order]

    def held_out(self) -> None:  # validation stills are passed as ``val``
        return None

    def references(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Another still of each one's person (itself when the person has only one)."""
        count, rank = self._count[idx], self._rank[idx]
        k = rng.integers(0, np.maximum(count - 1, 1))
        k = np.where(count > 1, k + (k >= rank), rank)  # skip the still itself
        return self._order[self._start[idx] + k]

    def draw(self, n: int, degraded_share: float, rng: np.random.Generator, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        idx = rng.integers(0, len(self.images), size=n)
        target = to_tensor(self.images[idx])
        ref = to_tensor(self.images[self.references(idx, rng)])
        # one colour change and mirror per pair
        perm = torch.stack([torch.randperm(3, generator=gen) for _ in range(n)])
        keep = torch.rand(n, generator=gen) < 0.5
        perm[keep] = torch.arange(3)
        gain = torch.empty(n, 3, 1, 1).uniform_(0.8, 1.2, generator=gen)
        offset = torch.empty(n, 3, 1, 1).uniform_(-0.1, 0.1, generator=gen)
        flip = torch.rand(n, generator=gen) < 0.5
        pair = torch.stack([target, ref], dim=1)  # [n, 2, 3, S, S]
        pair = torch.stack([pair[i][:, perm[i]] for i in range(n)])
        pair = (((pair + 1) / 2 * gain[:, None] + offset[:, None]).clamp(0, 1) * 2 - 1)
        pair[flip] = pair[flip].flip(-1)
        target, ref = pair[:, 0].contiguous(), pair[:, 1].contiguous()
        x = F.interpolate(target, size=(self.input_size, self.input_size), mode="area")
        m = int(round(n * degraded_share))
        if m:
            soft = synthetic_degrade(x[:m], gen)
            # milder than the joint model's raw frames: the upscaler sees frames the restorer has cleaned
            amount = torch.empty(m, 1, 1, 1).uniform_(0.1, 0.6, generator=gen)
            x = torch.cat([x[:m] + amount * (soft - x[:m]), x[m:]])
        x = x.clamp(-1, 1)
        if self.align:  # the reference warped onto the input's pose, as the upscaler gets it
            from model.diffusion.generate import video_from_model
            from model.restore.align import align_to

            frames, refs = video_from_model(x), video_from_model(ref)
            ref = torch.cat([to_tensor(align_to(frames[i : i + 1], refs[i])) for i in range(n)])
        drop = torch.rand(n, generator=gen) < self.reference_dropout
        ref[drop] = 0.0
        return x, ref, target


def validation_batches(cache: str | Path) -> Batches | None:
    """The val split of a cache as triples (synthetic inputs; the generated ones are training clips)."""
    from model.corpus.cache import SegmentCache
    from model.diffusion.config import DEFAULT_CAPTIONS
    from model.diffusion.data import Segments, _captions_to_indices, _speaker_numbers

    val = SegmentCache(Path(cache).expanduser(), split="val")
    if len(val) < 2:
        return None
    video, audio, captions = val.arrays()
    return Batches(Segments(np.asarray(video), audio, _captions_to_indices(captions, DEFAULT_CAPTIONS), _speaker_numbers(val.speakers())))


def check_init(init: Path | None, config: RestoreConfig, out: Path) -> None:
    """ValueError when ``init`` would start a new run in ``out`` (no training state there yet) with
    weights of another shape than ``config``."""
    if init is not None and not (out / "train_state.json").is_file() and RestoreConfig.load(init) != config:
        raise ValueError(f"--init {init} is a network of another shape than {out}'s config.json: pick another --out")


def train_restore(config: RestoreConfig, train: RestoreTrainConfig, batches: Batches, out: str | Path, *,
                  val: Batches | None = None, init: Path | None = None, device: str | None = None, progress: bool = True) -> dict:
    """Train (or resume) the restorer in ``out``; ``init``: a restorer folder whose weights start a new run
    (a fine-tune; ignored when ``out`` already holds one). Validation: ``val`` (synthetic inputs) and
    ``batches.held_out()`` (generated inputs kept out of training)."""
    from model.checkpoint import EMA, load_train_state, save_train_state
    from model.diffusion.launch import GracefulStop, setup_distributed
    from model.plots import LossLog

    out = Path(out)
    env = setup_distributed(device)
    torch.manual_seed(train.seed)
    net = RestoreNet(config).to(env.device)
    opt = torch.optim.AdamW(net.parameters(), lr=train.lr, weight_decay=1e-4)
    resuming = (out / "train_state.json").is_file()
    check_init(init, config, out)
    if init is not None and not resuming:
        net.load_state_dict({k: v.float() for k, v in load_file(str(Path(init) / "model.safetensors")).items()})
    ema = EMA(net, train.ema_decay)
    meta = load_train_state(out, module=net, optimizer=opt, ema=ema) if resuming else None
    critic = critic_opt = None
    if train.adversarial_weight:
        critic = patch_discriminator().to(env.device)
        critic_opt = torch.optim.Adam(critic.parameters(), lr=2 * train.lr, betas=(0.5, 0.999))
        if (out / "critic.pt").is_file():  # resumed with the run
            saved = torch.load(out / "critic.pt", map_location=env.device, weights_only=True)
            critic.load_state_dict(saved["critic"])
            critic_opt.load_state_dict(saved["optimizer"])
    start = int(meta["step"]) if meta else 0
    held = batches.held_out()
    model = net if env.world == 1 else torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    log = LossLog(out / "loss.csv", ["step", "loss", "val_generated", "val_synthetic", "lr", "steps_per_s"], resume_step=start, main=env.main)
    last: dict = {"step": start}
    stop = GracefulStop(enabled=env.world == 1)
    losses: list[float] = []
    tick = time.perf_counter()
    bar = tqdm(total=train.steps, initial=start, desc=f"train {config.name}", disable=not (progress and env.main), dynamic_ncols=True)
    for step in range(start, train.steps):
        lr = train.lr * 0.5 * (1 + math.cos(math.pi * step / train.steps))  # cosine to zero
        for group in opt.param_groups:
            group["lr"] = lr
        rng = np.random.default_rng([train.seed, env.rank, step])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        x, ref, target = (t.to(env.device) for t in batches.draw(train.batch_size, train.generated_share, rng, gen))
        with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=train.amp):
            y = model(x, ref)
        loss = restore_loss(y.float(), target, train.gradient_weight)
        total = loss
        if critic is not None:  # hinge GAN: the critic first, on this step's frames
            critic_loss = F.relu(1 - critic(target)).mean() + F.relu(1 + critic(y.detach().float())).mean()
            critic_opt.zero_grad(set_to_none=True)
            critic_loss.backward()
            critic_opt.step()
            total = loss - train.adversarial_weight * critic(y.float()).mean()
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        ema.update(net, step)
        losses.append(loss.item())
        bar.update(1)
        done = step + 1
        saving = done % train.save_every == 0 or done == train.steps or bool(stop.requested)
        if done % train.log_every == 0 or saving:
            rate = len(losses) / (time.perf_counter() - tick)
            tick = time.perf_counter()
            last = {"step": done, "loss": float(np.mean(losses)), "lr": lr, "steps_per_s": rate}
            losses.clear()
            if env.main:
                scores = evaluate(ema, config, val, held) if saving else {}
                last.update(scores)
                log.append(last)
                bar.set_postfix(loss=f"{last['loss']:.4f}")
        if saving and env.main:
            save_restorer(out, ema.state_dict(), config)
            save_train_state(out, module=net, optimizer=opt, ema=ema, meta={"step": done, "seed": train.seed})
            if critic is not None:
                torch.save({"critic": critic.state_dict(), "optimizer": critic_opt.state_dict()}, out / "critic.pt")
            log.plot(out / "loss.png", [("loss", "train: L1 + gradient L1"), ("val_generated", "val L1, generated inputs"),
                                        ("val_synthetic", "val L1, synthetic inputs")])
            if held is not None or val is not None:
                sample_sheet(out, held if held is not None else val, out / "samples.png")
            (out / "train.json").write_text(json.dumps({"train": asdict(train), "last": last}, indent=2))
        if saving and env.world > 1:
            torch.distributed.barrier()
        if stop.requested:
            break
    stop.restore()
    bar.close()
    return last


def evaluate(ema, config: RestoreConfig, val: Batches | None, held: Batches | None = None, n: int = 128) -> dict:
    """Validation L1 (pixels only) with the EMA weights (on CPU): fixed synthetic triples of ``val`` and
    fixed triples of ``held`` (generated inputs kept out of training, their stored references)."""
    net = RestoreNet(config)
    net.load_state_dict({k: v.cpu() for k, v in ema.state_dict().items()})
    net.eval()
    scores = {}
    for kind, batches, share in (("generated", held, 1.0), ("synthetic", val, 0.0)):
        if batches is None:
            continue
        rng = np.random.default_rng(123)
        x, ref, target = batches.draw(n, share, rng, torch.Generator().manual_seed(123))
        with torch.no_grad():
            scores[f"val_{kind}"] = round(float(F.l1_loss(net(x, ref), target)), 5)
        if x.shape[-1] != target.shape[-1]:  # the upscaler: its input as bicubic upsampling would give it
            x = F.interpolate(x, size=target.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1)
        scores[f"val_{kind}_input"] = round(float(F.l1_loss(x, target)), 5)
    return scores


def sample_sheet(folder: Path, val: Batches, path: Path, n: int = 8) -> None:
    from model.media import image_grid

    restorer = Restorer.load(folder)
    rng = np.random.default_rng(7)
    share = 1.0 if val.generated is not None else 0.0
    x, ref, target = val.draw(n, share, rng, torch.Generator().manual_seed(7))
    with torch.no_grad():
        y = restorer.net(x, ref)
    if x.shape[-1] != y.shape[-1]:  # the upscaler: its input shown as bicubic upsampling would show it
        x = F.interpolate(x, size=y.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1)
    images = [video_from_model(t) for t in (x, y, target, ref)]
    tiles = np.concatenate([np.stack(quad) for quad in zip(*images)])
    image_grid(tiles, path, columns=8, scale=2 if y.shape[-1] <= 128 else 1)


def save_restorer(folder: Path, state: dict, config: RestoreConfig) -> None:
    from model.checkpoint import save_weights

    save_weights(folder, state, config=lambda p: p.write_text(json.dumps(config.to_dict(), indent=2) + "\n"), dtype=torch.float32)
