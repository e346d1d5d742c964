"""``textcall train portrait`` (a row of ``model.train_cli.TRAINERS``): the portrait model that draws a
call's face.

Only argparse at import; torch and the training loop (``model/portrait/train.py``) load in the handler.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.train_cli import describe_flags, print_last, run_flags, set_threads


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
    describe_flags(sub, condition_lr_scale=20.0)
    sub.add_argument("--init", default="", metavar="DIR", help="start a new run from these weights (a model folder)")
    run_flags(sub)

    def run(args: argparse.Namespace) -> int:
        from model.corpus.stills import Stills
        from model.portrait.config import PortraitConfig, portrait_preset
        from model.portrait.train import PortraitTrainConfig, train_portrait

        set_threads(args)
        out = Path(args.out)
        try:
            config = PortraitConfig.load(out) if (out / "train_state.json").is_file() else portrait_preset(args.config)
            if args.describe and not config.describes:
                import dataclasses

                from model.describe.attributes import SLOTS

                config = dataclasses.replace(config, attribute_slots=SLOTS)
            train = PortraitTrainConfig(attribute_dropout=args.attribute_dropout, init=args.init,
                                        condition_lr_scale=args.condition_lr_scale,steps=args.steps, batch_size=args.batch_size, lr=args.lr, save_every=args.save_every,
                                        ema_decay=args.ema_decay, min_snr_gamma=args.min_snr_gamma, seed=args.seed,
                                        amp=not args.no_amp)
            stills = Stills.load(args.data)
        except (ValueError, FileNotFoundError) as exc:
            print(f"textcall train portrait: {exc}", file=sys.stderr)
            return 2
        last = train_portrait(config, train, stills, out, device=args.device, progress=not args.no_progress)
        print_last("portrait", last, f"checkpoint and samples.png in {out}")
        return 0

    sub.set_defaults(run=run)
