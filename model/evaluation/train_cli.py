"""``textcall train gender`` and ``textcall train identity`` (rows of ``model.train_cli.TRAINERS``): the
evaluation's judges, never a generator's loss.

Only argparse at import; torch and the judges (``gender.py``, ``identity.py``) load in the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.train_cli import set_threads


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

        set_threads(args)
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

        set_threads(args)
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
