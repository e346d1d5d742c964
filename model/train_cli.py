"""``textcall train WHAT``: training commands of the model package.

Each trainer is a sub-subcommand registered from the ``TRAINERS`` table ("module:function" of a
``register(subparsers)`` that adds one parser with ``set_defaults(run=handler)``). Another trainer
(``syncnet``, ``lipsync``, ...) is one more line in the table. Module import stays light (argparse
only): torch is imported inside the handlers, because ``textcall --help`` imports this module.

Several processes or nodes: ``torchrun --nproc_per_node=N -m model.train_cli diffusion ...``
(or ``torchrun --no-python textcall train diffusion ...``); gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from model.command_table import register_table

TRAINERS: dict[str, str] = {
    "diffusion": "model.train_cli:register_diffusion",
    "classifier": "model.train_cli:register_classifier",
    "syncnet": "model.lipsync.cli:register_train_syncnet",
    "lipsync": "model.lipsync.cli:register_train_lipsync",
    "gender": "model.train_cli:register_gender",
    "portrait": "model.train_cli:register_portrait",
    "identity": "model.train_cli:register_identity",
    "restore": "model.train_cli:register_restore",
    "portrait-clean": "model.train_cli:register_portrait_clean",
}


def register(subparsers) -> None:
    register_table(
        subparsers,
        "train",
        help="train the receiver's models (diffusion, classifier, ...)",
        description="Train one of the receiver's models on the cached corpus segments.",
        table=TRAINERS,
    )


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
    sub.add_argument("--weight-decay", type=float, default=0.05)
    _init_option(sub, "e.g. to adapt one to another audio scale")
    sub.set_defaults(run=lambda args: _train(args, "classifier"))


def register_gender(subparsers) -> None:
    sub = _judge_parser(
        subparsers, "gender",
        help="train the face-gender classifier that `textcall eval` uses to judge caption adherence",
        description="Train a small frame classifier (male/female) on clean corpus frames and, with --stills,\n"
        "on portraits of many people no generator saw; it is the evaluation's judge, independent of the\n"
        "generator. The card reports its accuracy on the corpus test split and on held-out people.",
        data_help="corpus segment cache (textcall corpus prepare)", steps=400, batch_size=64, unit="frames",
    )
    sub.add_argument("--stills", type=Path, default=None, metavar="DIR",
                     help="a judge stills folder (textcall corpus stills --purpose judge): half of each batch")
    sub.add_argument("--width", type=int, default=16, help="channels of the first conv stage (default %(default)s)")

    def run(args: argparse.Namespace) -> int:
        from model.evaluation.gender import GenderConfig, GenderTrainConfig, train_gender

        _set_threads(args)
        try:
            train = GenderTrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed)
            stills = args.stills.expanduser() if args.stills is not None else None
            metrics = train_gender(args.data, args.out, stills=stills, config=GenderConfig(width=args.width), train=train,
                                   progress=not args.no_progress)
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train gender: {exc}", file=sys.stderr)
            return 2
        held = f", held-out people {metrics['stills_test_accuracy']:.4f}" if "stills_test_accuracy" in metrics else ""
        print(f"gender: test frame accuracy {metrics['test_frame_accuracy']:.4f}{held} after {metrics['steps']} steps "
              f"({metrics['seconds']} s); written to {args.out}")
        return 0

    sub.set_defaults(run=run)


def _judge_parser(subparsers, name: str, *, help: str, description: str, data_help: str, steps: int, batch_size: int,
                  unit: str):
    """The parser of a judge's trainer (gender, identity): the evaluation's networks, never a generator's loss."""
    sub = subparsers.add_parser(name, help=help, description=description, formatter_class=argparse.RawTextHelpFormatter)
    sub.add_argument("--data", required=True, metavar="DIR", help=data_help)
    sub.add_argument("--out", required=True, metavar="DIR", help="output folder")
    sub.add_argument("--steps", type=int, default=steps, help="optimisation steps (default %(default)s)")
    sub.add_argument("--batch-size", type=int, default=batch_size, help=f"{unit} per step (default %(default)s)")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--no-progress", action="store_true")
    return sub


def _set_threads(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def _print_last(name: str, last: dict, where: str) -> None:
    """A run's last logged figures, printed once: by the main process of a ``torchrun`` launch."""
    if int(os.environ.get("RANK", "0")) == 0:
        summary = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in last.items())
        print(f"{name}: {summary}; {where}")


def _run_flags(sub) -> None:
    """Where and how a trainer runs: the flags the newer trainers share."""
    sub.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--no-amp", action="store_true", help="float32 instead of bf16 autocast")
    sub.add_argument("--no-progress", action="store_true", help="no progress bar")


def register_identity(subparsers) -> None:
    sub = _judge_parser(
        subparsers, "identity",
        help="train the face-identity judge that `textcall eval` uses to measure one face per call",
        description="Train a face-embedding CNN (CosFace) on still portraits of people no generator sees\n"
        "(`textcall corpus stills --purpose judge`); its same-person threshold is set at the equal-error\n"
        "point on people held out of its own training. It is the evaluation's judge, never a training loss.",
        data_help="a judge stills folder (textcall corpus stills --purpose judge)", steps=2000, batch_size=128, unit="faces",
    )

    def run(args: argparse.Namespace) -> int:
        from model.evaluation.identity import IdentityTrainConfig, train_identity

        _set_threads(args)
        try:
            meta = train_identity(args.data, args.out, train=IdentityTrainConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed),
                                  progress=not args.no_progress)
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train identity: {exc}", file=sys.stderr)
            return 2
        val = meta["val"]
        print(f"identity judge: threshold {meta['threshold']:.3f}, on {meta['data']['val_people']} held-out people "
              f"same judged same {val['same_judged_same']:.3f}, different judged same {val['different_judged_same']:.3f} "
              f"({meta['seconds']} s); written to {args.out}")
        return 0

    sub.set_defaults(run=run)


def register_restore(subparsers) -> None:
    sub = subparsers.add_parser(
        "restore",
        help="train the restorer that gives a call's frames back the detail of its face",
        description=(
            "Train the reference restorer (model/restore): (soft sampled frame, the call's face) -> crisp frame.\n"
            "Targets are corpus frames, references other clips of the same person, inputs the targets made to\n"
            "look like the joint model's output: --generated (the joint model's re-sampling of corpus clips,\n"
            "`textcall corpus resample`) and synthetic blur, noise and colour mottling. L1 on pixels and on their\n"
            "gradients, EMA weights, loss.csv/png and samples.png (input | restored | target | reference);\n"
            "resumes with the same --out, Ctrl-C saves, bf16 autocast (--no-amp for float32)."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("--data", required=True, metavar="DIRS", help="corpus caches, comma-separated (train split; val of the first for scores)")
    sub.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder (resumed if it holds a run)")
    sub.add_argument("--generated", default=None, metavar="NPZS", help="generated.npz files from `textcall corpus resample` / `lipsynced`,\n"
                     "comma-separated, drawn from as one pool (default: synthetic only)")
    sub.add_argument("--holdout", type=float, default=0.1, help="share of each --generated file kept for validation (default %(default)s)")
    sub.add_argument("--init", type=Path, default=None, metavar="DIR", help="start a new run from this restorer's weights (a fine-tune)")
    sub.add_argument("--steps", type=int, default=4000, help="optimisation steps (default %(default)s)")
    sub.add_argument("--batch-size", type=int, default=32, help="frames per step (default %(default)s)")
    sub.add_argument("--lr", type=float, default=1e-3, help="peak learning rate, cosine to zero (default %(default)s)")
    sub.add_argument("--generated-share", type=float, default=0.5, help="share of each batch from --generated (default %(default)s)")
    sub.add_argument("--save-every", type=int, default=500, help="checkpoint interval (default %(default)s)")
    _run_flags(sub)

    def run(args: argparse.Namespace) -> int:
        from model.diffusion.data import load_segments
        from model.restore.network import RestoreConfig
        from model.restore.train import Batches, RestoreTrainConfig, train_restore, validation_batches

        _set_threads(args)
        try:
            train = RestoreTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every,
                                       generated_share=args.generated_share, seed=args.seed, amp=not args.no_amp)
            out = Path(args.out)
            config = RestoreConfig.load(out) if (out / "config.json").is_file() else RestoreConfig()
            generated = [Path(p).expanduser() for p in (args.generated or "").split(",") if p.strip()]
            for path in generated:
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: no such file (make it with `textcall corpus resample`)")
            init = args.init.expanduser() if args.init is not None else None
            if init is not None and not (init / "model.safetensors").is_file():
                raise FileNotFoundError(f"--init {init}: no model.safetensors there")
            if init is not None and not (out / "config.json").is_file():
                config = RestoreConfig.load(init)
            batches = Batches(load_segments(args.data), generated, holdout=args.holdout)
            val = validation_batches(args.data.split(",")[0])
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train restore: {exc}", file=sys.stderr)
            return 2
        last = train_restore(config, train, batches, out, val=val, init=init, device=args.device, progress=not args.no_progress)
        _print_last("restore", last, f"checkpoint in {out}")
        return 0

    sub.set_defaults(run=run)


def register_portrait_clean(subparsers) -> None:
    sub = subparsers.add_parser(
        "portrait-clean",
        help="train the portrait cleaner: the portrait model's faces with its texture removed",
        description=(
            "Train the restorer network without a reference (model/restore) on still portraits: targets the\n"
            "stills, inputs the portrait model's own re-sampling of them (noised to t0 in [200, 600] and\n"
            "denoised, made first into OUT/generated.npz when it is missing) and synthetic degradation.\n"
            "Ship it as PORTRAIT/clean/: the portrait model then cleans every face it draws. Resumes with the\n"
            "same --out; loss.csv/png and samples.png (input | cleaned | target)."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("--data", required=True, metavar="DIR", help="a stills folder (textcall corpus stills)")
    sub.add_argument("--portrait", required=True, metavar="DIR", help="the portrait model whose texture to clean")
    sub.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder (resumed if it holds a run)")
    sub.add_argument("--count", type=int, default=2000, help="stills re-sampled by the portrait model (default %(default)s)")
    sub.add_argument("--steps", type=int, default=2000, help="optimisation steps (default %(default)s)")
    sub.add_argument("--batch-size", type=int, default=32, help="faces per step (default %(default)s)")
    sub.add_argument("--save-every", type=int, default=250, help="checkpoint interval (default %(default)s)")
    sub.add_argument("--width", type=int, default=48,
                     help="channels of a new run (default %(default)s: 1.0 M parameters, 2 MB shipped as float16, "
                          "so all of model/weights stays under 50 MB; a resumed run keeps its own)")
    _run_flags(sub)

    def run(args: argparse.Namespace) -> int:
        from model.corpus.stills import Stills
        from model.restore.data import make_generated_stills
        from model.restore.network import RestoreConfig
        from model.restore.train import RestoreTrainConfig, StillBatches, train_restore

        _set_threads(args)
        out = Path(args.out)
        try:
            train = RestoreTrainConfig(steps=args.steps, batch_size=args.batch_size, save_every=args.save_every, seed=args.seed,
                                       amp=not args.no_amp)
            stills = Stills.load(args.data)
            generated = out / "generated.npz"
            if not generated.is_file():
                make_generated_stills(Path(args.portrait), Path(args.data), out, count=args.count, seed=args.seed,
                                      progress=not args.no_progress)
            config = RestoreConfig.load(out) if (out / "config.json").is_file() else RestoreConfig(attention=False, width=args.width, name="portrait-clean")
            held = min(256, len(stills.images) // 10)
            batches = StillBatches(stills.images[:-held], generated)
            val = StillBatches(stills.images[-held:])
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train portrait-clean: {exc}", file=sys.stderr)
            return 2
        last = train_restore(config, train, batches, out, val=val, device=args.device, progress=not args.no_progress)
        _print_last("portrait-clean", last, f"checkpoint in {out} (ship it as PORTRAIT/clean)")
        return 0

    sub.set_defaults(run=run)


def register_portrait(subparsers) -> None:
    sub = subparsers.add_parser(
        "portrait",
        help="train the portrait model that draws a call's face from its caption",
        description=(
            "Train the still-image sibling of the joint model (model/portrait) on still portraits\n"
            "(`textcall corpus stills`): Eq. 5 on one image, v target, min-SNR weighting, EMA weights.\n"
            "Writes OUT/model.safetensors + config.json, a resumable state, loss.csv/png and samples.png\n"
            "(faces per caption) at every save. Run it again with the same --out to resume; Ctrl-C saves.\n"
            "bf16 autocast on CPU and CUDA (--no-amp for float32; on a CPU with AMX bf16 is about 4x faster)."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("--data", required=True, metavar="DIR", help="a stills folder (textcall corpus stills)")
    sub.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder (resumed if it holds a run)")
    sub.add_argument("--config", default="portrait", help="preset portrait|portrait-small|tiny or a config.json (default %(default)s)")
    sub.add_argument("--steps", type=int, default=20_000, help="total optimisation steps (default %(default)s)")
    sub.add_argument("--batch-size", type=int, default=32, help="per process (default %(default)s)")
    sub.add_argument("--lr", type=float, default=2e-4, help="learning rate (default %(default)s)")
    sub.add_argument("--save-every", type=int, default=500, help="checkpoint interval in steps (default %(default)s)")
    sub.add_argument("--ema-decay", type=float, default=0.999, help="EMA decay (default %(default)s)")
    sub.add_argument("--min-snr-gamma", type=float, default=0.0,
                     help="min-SNR loss weight cap (Hang et al. 2023), 0 = plain v loss (default %(default)s)")
    _run_flags(sub)

    def run(args: argparse.Namespace) -> int:
        from model.corpus.stills import Stills
        from model.portrait.config import PortraitConfig, portrait_preset
        from model.portrait.train import PortraitTrainConfig, train_portrait

        _set_threads(args)
        out = Path(args.out)
        try:
            config = PortraitConfig.load(out) if (out / "train_state.json").is_file() else portrait_preset(args.config)
            train = PortraitTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every,
                                        ema_decay=args.ema_decay, min_snr_gamma=args.min_snr_gamma, seed=args.seed,
                                        amp=not args.no_amp)
            stills = Stills.load(args.data)
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train portrait: {exc}", file=sys.stderr)
            return 2
        last = train_portrait(config, train, stills, out, device=args.device, progress=not args.no_progress)
        _print_last("portrait", last, f"checkpoint and samples.png in {out}")
        return 0

    sub.set_defaults(run=run)


def _train(args: argparse.Namespace, kind: str) -> int:
    from pathlib import Path

    from model.diffusion import config as cfgs
    from model.diffusion.data import load_segments, toy_segments
    from model.diffusion.train import TrainConfig, run_training

    _set_threads(args)
    out = Path(args.out)
    try:
        config = _resolve(cfgs, args.config, out, kind, getattr(args, "prediction", None))
        unet = config.unet
        if args.toy:
            segments = toy_segments(args.toy, unet.frames, unet.image_size, unet.audio_samples, seed=args.seed)
        else:
            segments = load_segments(args.data, config.captions)
        extra = {"caption_dropout": args.caption_dropout, "crop_frames": args.crop_frames,
                 "audio_lr_scale": args.audio_lr_scale, "train_branch": args.train_branch,
                 "audio_alone_steps": args.audio_alone_steps, "audio_alone_batch": args.audio_alone_batch} if kind == "diffusion" else {
            "weight_decay": args.weight_decay, "lr_decay": True, "caption_dropout": 0.0}
        train = TrainConfig(
            steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every, log_every=args.log_every,
            ema_decay=args.ema_decay, seed=args.seed, amp=not args.no_amp, init=args.init, **extra,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"textcall train {kind}: {exc}", file=sys.stderr)
        return 2
    last = run_training(config, train, segments, out, device=args.device, progress=not args.no_progress)
    _print_last(kind, last, f"checkpoint in {out}")
    return 0


def _resolve(cfgs, spec: str | None, out, kind: str, prediction: str | None = None):
    """The run's own config when resuming (it must agree with --config and --prediction), else
    --config or small, with --prediction applied."""
    import dataclasses

    want = None
    if spec is not None:
        want = cfgs.resolve_config(spec)
        if kind == "classifier" and not isinstance(want, cfgs.ClassifierConfig):
            want = cfgs.ClassifierConfig(unet=want.unet, schedule=want.schedule, captions=want.captions,
                                         audio_scale=want.audio_scale, name=want.name)
    if (out / "train_state.json").is_file():
        have = cfgs.load_config(out)
        if prediction is not None and prediction != have.prediction:
            raise ValueError(f"{out} holds a {have.prediction}-prediction run; pick a new --out to train {prediction}")
        if want is not None and kind == "diffusion":
            want = dataclasses.replace(want, prediction=have.prediction)  # a resumed run keeps its own target
        if want is not None and want != have:
            raise ValueError(f"{out} holds a run with another architecture; pick a new --out or drop --config")
        return have
    if want is None:
        want = cfgs.classifier_preset("small") if kind == "classifier" else cfgs.preset("small")
    return dataclasses.replace(want, prediction=prediction) if prediction is not None else want


def main(argv: list[str] | None = None) -> int:
    """``python -m model.train_cli WHAT ...`` (what torchrun runs)."""
    parser = argparse.ArgumentParser(prog="textcall train")
    sub = parser.add_subparsers(dest="cmd")
    register(sub)
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
