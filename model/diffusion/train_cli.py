"""``textcall train diffusion`` and ``textcall train classifier`` (rows of ``model.train_cli.TRAINERS``).

Only argparse at import; torch and the training loop (``model/diffusion/train.py``) load in the handler.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.train_cli import describe_flags, print_last, set_threads


def _common(parser: argparse.ArgumentParser, *, lr: float, steps: int, save_every: int, ema: float) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR", help="corpus segments: a folder of *.npz or a corpus cache")
    source.add_argument("--toy", type=int, metavar="N", help="train on N synthetic toy segments (smoke runs)")
    parser.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder (resumed if it holds a run)")
    parser.add_argument(
        "--config", default=None,
        help="architecture: preset paper|small|small-mel|tiny or a config.json (default: the run's own when resuming, else small)",
    )
    parser.add_argument("--steps", type=int, default=steps, help="total optimisation steps (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8, help="per process (default %(default)s)")
    parser.add_argument("--lr", type=float, default=lr, help="learning rate (default %(default)s)")
    parser.add_argument("--save-every", type=int, default=save_every, help="checkpoint interval in steps (default %(default)s)")
    parser.add_argument("--log-every", type=int, default=10, help="loss.csv interval in steps (default %(default)s)")
    parser.add_argument("--ema-decay", type=float, default=ema, help="EMA decay (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-amp", action="store_true", help="float32 instead of bf16 autocast (on CUDA and CPU)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def register_diffusion(subparsers) -> None:
    sub = subparsers.add_parser(
        "diffusion",
        help="train the joint audio-video diffusion model",
        description=(
            "Train the double-branch U-Net on the loss of Eq. 5 (both modalities), fixed lr 1e-4 as in the\n"
            "paper, EMA weights. Writes OUT/model.safetensors + config.json (EMA), a resumable training\n"
            "state, loss.csv and loss.png. Run it again with the same --out to resume."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    _common(sub, lr=1e-4, steps=50_000, save_every=5_000, ema=0.9999)
    describe_flags(sub, condition_lr_scale=1.0)
    sub.add_argument("--caption-dropout", type=float, default=0.1, help="share of null captions (default %(default)s)")
    sub.add_argument("--crop-frames", type=int, default=0,
                     help="train on random windows of N frames and their audio (0 = whole clips, the paper;\n"
                     "a CPU sees more distinct faces per second with e.g. 4 and a larger batch)")
    sub.add_argument("--prediction", choices=("eps", "v"), default=None,
                     help="network target for a new run: eps (the paper, Eq. 5) or v (Salimans & Ho; the\n"
                     "small preset's default: high-noise steps stop amplifying the error). Default: the config's")
    sub.add_argument("--audio-lr-scale", type=float, default=1.0,
                     help="the audio branch learns at --lr times this (default %(default)s), e.g. 3 when\n"
                     "fine-tuning trained video into a new audio representation (--config small-mel --init ...)")
    sub.add_argument("--train-branch", choices=("both", "audio"), default="both",
                     help="both (the paper: one joint loss) or audio: only the audio branch trains, on the\n"
                     "audio loss, at about a third of the cost per step on a CPU. The video still reads the\n"
                     "audio's features and drifts as they change (its loss, logged, doubled in 500 steps at\n"
                     "lr 1e-3 on small-mel): prefer --audio-alone-steps. Default: both")
    sub.add_argument("--audio-alone-steps", type=int, default=0,
                     help="after every joint step, N optimizer steps of the audio branch alone on whole\n"
                     "clips' audio with no video (default 0, the paper): on a CPU they cost a fraction of a\n"
                     "joint step, so the audio branch sees many more clips (modality dropout)")
    sub.add_argument("--audio-alone-batch", type=int, default=64, help="clips per audio-alone step (default %(default)s)")
    sub.add_argument("--reference-dropout", type=float, default=0.2,
                     help="share of clips trained without their reference face, for a network with a reference\n"
                     "input (default %(default)s)")
    _init_option(sub, "e.g. to fine-tune an eps model as v")
    sub.set_defaults(run=lambda args: _train(args, "diffusion"))


def _init_option(sub, example: str) -> None:
    sub.add_argument("--init", metavar="DIR", default="",
                     help=f"start a new run from these weights (a model folder or .safetensors), {example};\n"
                     "ignored when --out already holds a run")


def register_classifier(subparsers) -> None:
    sub = subparsers.add_parser(
        "classifier",
        help="train the noisy joint video-audio caption classifier (classifier guidance)",
        description=(
            "Train the noisy classifier p(caption | video_t, audio_t, t) for classifier guidance: AdamW,\n"
            "lr 1e-3 decaying linearly, weight decay 0.05, t uniform over [0, T) (paper section V-B)."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    _common(sub, lr=1e-3, steps=300_000, save_every=5_000, ema=0.999)
    describe_flags(sub, condition_lr_scale=None)
    sub.add_argument("--weight-decay", type=float, default=0.05)
    _init_option(sub, "e.g. to adapt one to another audio scale")
    sub.set_defaults(run=lambda args: _train(args, "classifier"))


def _train(args: argparse.Namespace, kind: str) -> int:
    from model.diffusion import config as cfgs
    from model.diffusion.data import load_segments, toy_segments
    from model.diffusion.train import TrainConfig, run_training

    set_threads(args)
    out = Path(args.out)
    try:
        config = _resolve(cfgs, args.config, out, kind, getattr(args, "prediction", None), args.describe)
        unet = config.unet
        if args.toy:
            segments = toy_segments(args.toy, unet.frames, unet.image_size, unet.audio_samples, seed=args.seed)
        else:
            segments = load_segments(args.data, config.captions)
        extra = {"caption_dropout": args.caption_dropout, "crop_frames": args.crop_frames,
                 "audio_lr_scale": args.audio_lr_scale, "train_branch": args.train_branch,
                 "audio_alone_steps": args.audio_alone_steps, "audio_alone_batch": args.audio_alone_batch,
                 "reference_dropout": args.reference_dropout, "condition_lr_scale": args.condition_lr_scale,
                 "attribute_dropout": args.attribute_dropout} if kind == "diffusion" else {
            "weight_decay": args.weight_decay, "lr_decay": True, "caption_dropout": 0.0}
        train = TrainConfig(
            steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every, log_every=args.log_every,
            ema_decay=args.ema_decay, seed=args.seed, amp=not args.no_amp, init=args.init, **extra,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"textcall train {kind}: {exc}", file=sys.stderr)
        return 2
    last = run_training(config, train, segments, out, device=args.device, progress=not args.no_progress)
    print_last(kind, last, f"checkpoint in {out}")
    return 0


def _resolve(cfgs, spec: str | None, out, kind: str, prediction: str | None = None, describe: bool = False):
    """The run's own config when resuming (it must agree with --config, --prediction and --describe),
    else --config or small, with --prediction and --describe applied."""
    import dataclasses

    want = None
    if spec is not None:
        want = cfgs.resolve_config(spec)
        if kind == "classifier" and not isinstance(want, cfgs.ClassifierConfig):
            want = cfgs.ClassifierConfig(unet=want.unet, schedule=want.schedule, captions=want.captions,
                                         audio_scale=want.audio_scale, name=want.name)
    resuming = (out / "train_state.json").is_file()
    if want is None and not resuming:
        want = cfgs.classifier_preset("small") if kind == "classifier" else cfgs.preset("small")
    if describe and want is not None:
        from model.describe.attributes import SLOTS

        want = dataclasses.replace(want, unet=dataclasses.replace(want.unet, attribute_slots=SLOTS))
    if resuming:
        have = cfgs.load_config(out)
        if prediction is not None and prediction != have.prediction:
            raise ValueError(f"{out} holds a {have.prediction}-prediction run; pick a new --out to train {prediction}")
        if want is not None and kind == "diffusion":
            want = dataclasses.replace(want, prediction=have.prediction)  # a resumed run keeps its own target
        if want is not None and want != have:
            raise ValueError(f"{out} holds a run with another architecture; pick a new --out or drop --config")
        return have
    return dataclasses.replace(want, prediction=prediction) if prediction is not None else want
