"""``textcall train restore`` and ``textcall train portrait-clean`` (rows of ``model.train_cli.TRAINERS``):
the reference restorer and the portrait cleaner, one network (``model/restore``) trained two ways.

Only argparse at import; torch and the training loop (``model/restore/train.py``) load in the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.train_cli import print_last, run_flags, set_threads


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
    run_flags(sub)

    def run(args: argparse.Namespace) -> int:
        from model.diffusion.data import load_segments
        from model.restore.network import RestoreConfig
        from model.restore.train import Batches, RestoreTrainConfig, train_restore, validation_batches

        set_threads(args)
        try:
            train = RestoreTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every,
                                       generated_share=args.generated_share, seed=args.seed, amp=not args.no_amp)
            out = Path(args.out)
            generated = [Path(p).expanduser() for p in (args.generated or "").split(",") if p.strip()]
            for path in generated:
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: no such file (make it with `textcall corpus resample`)")
            init = _init_folder(args)
            config = _run_config(out, init, RestoreConfig)
            batches = Batches(load_segments(args.data), generated, holdout=args.holdout)
            val = validation_batches(args.data.split(",")[0])
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train restore: {exc}", file=sys.stderr)
            return 2
        last = train_restore(config, train, batches, out, val=val, init=init, device=args.device, progress=not args.no_progress)
        print_last("restore", last, f"checkpoint in {out}")
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
    run_flags(sub)

    def run(args: argparse.Namespace) -> int:
        from model.corpus.stills import Stills
        from model.restore.data import make_generated_stills
        from model.restore.network import RestoreConfig
        from model.restore.train import RestoreTrainConfig, StillBatches, train_restore

        set_threads(args)
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
        print_last("portrait-clean", last, f"checkpoint in {out} (ship it as PORTRAIT/clean)")
        return 0

    sub.set_defaults(run=run)


UPSCALE_DEFAULT = dict(image_size=64, patch=1, width=32, blocks=2, mid_blocks=2, groups=8, attention=False, scale=4, align=True,
                       name="upscale")


def register_upscale(subparsers) -> None:
    sub = subparsers.add_parser(
        "upscale",
        help="train the super-resolution stage: a call's 64-pixel frames to 256 with the detail of its face",
        description=(
            "Train the upscaler (model/restore with scale 4): (64x64 frame, the call's face at 256) -> 256x256\n"
            "frame. Data: still portraits at 256 (`textcall corpus stills --purpose detail --size 256`); the\n"
            "target a still, its reference another still of the same person (another pose and mouth), its\n"
            "input the target at 64, some made soft and mottled like the call's frames; references\n"
            "dropped at random (--reference-dropout) so that a face alone can be upscaled. The last tenth of\n"
            "the people (at most 100) are held out for validation. L1 on pixels (--gradient-weight), EMA weights,\n"
            "loss.csv/png and samples.png (bicubic input | upscaled | target | reference); resumes with the\n"
            "same --out, Ctrl-C saves. Float32 by default: bf16 convolutions of this shape run on a slow path\n"
            "on CPU (--amp to try it on a GPU)."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("--data", required=True, metavar="DIR", help="a stills folder rendered at 256 (--purpose detail)")
    sub.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder (resumed if it holds a run)")
    sub.add_argument("--steps", type=int, default=1200, help="optimisation steps (default %(default)s)")
    sub.add_argument("--batch-size", type=int, default=16, help="frames per step (default %(default)s)")
    sub.add_argument("--lr", type=float, default=5e-4, help="peak learning rate, cosine to zero (default %(default)s; 1e-3 and\n"
                     "2e-3 left the network at bicubic upsampling for 500 steps)")
    sub.add_argument("--gradient-weight", type=float, default=0.0, help="L1 on horizontal/vertical differences besides pixel L1\n"
                     "(default %(default)s: in a 240-step probe pure L1 learned faster on both measures)")
    sub.add_argument("--degraded-share", type=float, default=0.3, help="share of inputs made soft and mottled (default %(default)s)")
    sub.add_argument("--reference-dropout", type=float, default=0.15, help="share of pairs with no reference (default %(default)s)")
    sub.add_argument("--adversarial-weight", type=float, default=0.0,
                     help="weight of a patch discriminator's hinge loss beside L1 (default %(default)s = L1 only;\n"
                          "sharper edges where the input leaves them open; the critic is kept as critic.pt)")
    sub.add_argument("--init", type=Path, default=None, metavar="DIR",
                     help="start a new run from this upscaler's weights (a fine-tune; ignored when resuming)")
    sub.add_argument("--save-every", type=int, default=250, help="checkpoint interval (default %(default)s)")
    sub.add_argument("--width", type=int, default=UPSCALE_DEFAULT["width"],
                     help="channels of a new run (default %(default)s: 0.32 M parameters, 0.64 MB shipped as float16; "
                          "a resumed run keeps its own)")
    sub.add_argument("--amp", action="store_true", help="bf16 autocast (slow on CPU for this network)")
    run_flags(sub)

    def run(args: argparse.Namespace) -> int:
        from model.corpus.stills import Stills
        from model.restore.network import RestoreConfig
        from model.restore.train import DetailBatches, RestoreTrainConfig, train_restore

        set_threads(args)
        out = Path(args.out)
        try:
            init = _init_folder(args)
            train = RestoreTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every,
                                       generated_share=args.degraded_share, gradient_weight=args.gradient_weight, seed=args.seed,
                                       amp=args.amp and not args.no_amp, adversarial_weight=args.adversarial_weight)
            if not 0 <= args.reference_dropout < 1:
                raise ValueError("--reference-dropout must be in [0, 1)")
            config = _run_config(out, init, lambda: RestoreConfig(**{**UPSCALE_DEFAULT, "width": args.width}))
            if config.scale == 1:
                raise ValueError(f"{out} holds a restorer (scale 1), not an upscaler")
            stills = Stills.load(args.data)
            if stills.images.shape[1] != config.output_size:
                raise ValueError(f"{args.data} holds {stills.images.shape[1]} px stills; the upscaler needs {config.output_size} px "
                                 f"(`textcall corpus stills --purpose detail --size {config.output_size}`)")
            people = int(stills.speaker.max()) + 1
            held = stills.speaker >= people - max(1, min(100, people // 10))
            if held.all():
                raise ValueError(f"{args.data} has too few people to hold some out")
            kw = dict(input_size=config.image_size, reference_dropout=args.reference_dropout, align=config.align)
            batches = DetailBatches(stills.images[~held], stills.speaker[~held], **kw)
            val = DetailBatches(stills.images[held], stills.speaker[held], **{**kw, "reference_dropout": 0.0})
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train upscale: {exc}", file=sys.stderr)
            return 2
        last = train_restore(config, train, batches, out, val=val, init=init, device=args.device, progress=not args.no_progress)
        print_last("upscale", last, f"checkpoint in {out} (ship it as model/weights/upscale)")
        return 0

    sub.set_defaults(run=run)


MOUTH_DEFAULT = dict(image_size=128, patch=2, width=32, blocks=2, mid_blocks=3, groups=8, attention=False, name="mouth")


def register_mouth(subparsers) -> None:
    sub = subparsers.add_parser(
        "mouth",
        help="train the mouth sharpener: the lip-sync network's soft mouths drawn crisp at 256",
        description=(
            "Train the mouth sharpener (model/restore/mouth.py: the restorer network without a reference) on\n"
            "128-pixel squares around corpus mouths at 256 (`textcall corpus mouths`): inputs the lip-sync\n"
            "network's redraw of the clip from its own speech (only frames whose mouth agrees with the truth at low\n"
            "frequencies: --keep) and the true mouth degraded (brought down, blurred, mottled, speckled), targets\n"
            "the true mouths. L1 on pixels and gradients, EMA weights, loss.csv/png and samples.png (input |\n"
            "sharpened | target); resumes with the same --out, Ctrl-C saves. Used as mouth/ of a weights folder\n"
            "with --mouth on. None is shipped: the ones trained so far cost lip sync (docs/lipsync.md)."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("--pairs", required=True, type=Path, metavar="DIR", help="a `textcall corpus mouths` folder")
    sub.add_argument("--out", required=True, type=Path, metavar="DIR", help="checkpoint folder (resumed if it holds a run)")
    sub.add_argument("--steps", type=int, default=2000, help="optimisation steps (default %(default)s)")
    sub.add_argument("--batch-size", type=int, default=16, help="squares per step (default %(default)s)")
    sub.add_argument("--lr", type=float, default=1e-3, help="peak learning rate, cosine to zero (default %(default)s)")
    sub.add_argument("--crop", type=int, default=96, help="side of the random crops trained on (default %(default)s; the\n"
                     "network runs on 128-pixel squares, it is convolutional)")
    sub.add_argument("--keep", type=float, default=0.6, help="share of lip-synced frames drawn from: those agreeing best\n"
                     "with their truth (default %(default)s)")
    sub.add_argument("--lipsynced-share", type=float, default=0.6, help="share of each batch from the lip-synced frames, the rest\n"
                     "degraded truth (default %(default)s)")
    sub.add_argument("--save-every", type=int, default=250, help="checkpoint interval (default %(default)s)")
    sub.add_argument("--width", type=int, default=MOUTH_DEFAULT["width"], help="channels of a new run (default %(default)s)")
    sub.add_argument("--init", type=Path, default=None, metavar="DIR",
                     help="start a new run from this sharpener's weights (a fine-tune; ignored when resuming)")
    run_flags(sub)

    def run(args: argparse.Namespace) -> int:
        from model.restore.mouth import MouthBatches
        from model.restore.network import RestoreConfig
        from model.restore.train import RestoreTrainConfig, train_restore

        set_threads(args)
        out = args.out.expanduser()
        try:
            init = _init_folder(args)
            train = RestoreTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every,
                                       generated_share=args.lipsynced_share, seed=args.seed, amp=not args.no_amp)
            config = _run_config(out, init, lambda: RestoreConfig(**{**MOUTH_DEFAULT, "width": args.width}))
            if not 16 <= args.crop <= config.image_size:
                raise ValueError(f"--crop must be in [16, {config.image_size}]")
            batches, val = MouthBatches.load(args.pairs, keep=args.keep, size=args.crop)
            if val is not None:  # validation on whole squares, as the receiver runs it
                val.size = config.image_size
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train mouth: {exc}", file=sys.stderr)
            return 2
        last = train_restore(config, train, batches, out, val=val, init=init, device=args.device, progress=not args.no_progress)
        print_last("mouth", last, f"checkpoint in {out} (a weights folder's mouth/, with --mouth on)")
        return 0

    sub.set_defaults(run=run)


def _run_config(out: Path, init: Path | None, new):
    """The network shape of a run in ``out``: its own when resuming, else ``init``'s (a fine-tune), else
    ``new()``; ValueError when ``init`` does not fit ``out``'s (``check_init``)."""
    from model.restore.network import RestoreConfig
    from model.restore.train import check_init

    config = RestoreConfig.load(out) if (out / "config.json").is_file() else RestoreConfig.load(init) if init is not None else new()
    check_init(init, config, out)
    return config


def _init_folder(args: argparse.Namespace) -> Path | None:
    """``--init``'s folder (user-expanded), or None; FileNotFoundError when it holds no weights."""
    if args.init is None:
        return None
    init = args.init.expanduser()
    if not (init / "model.safetensors").is_file():
        raise FileNotFoundError(f"--init {init}: no model.safetensors there")
    return init
