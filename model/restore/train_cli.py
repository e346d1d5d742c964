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
