"""``textcall train WHAT``: training commands of the model package.

Each trainer is a sub-subcommand registered from the ``TRAINERS`` table ("module:function" of a
``register(subparsers)`` that adds one parser with ``set_defaults(run=handler)``); each package keeps
its trainers' parsers (``model/diffusion/train_cli.py``, ``model/lipsync/cli.py``, ...), and another
trainer is one more line in the table. The flags several trainers share are here. Module import
stays light (argparse only): torch is imported inside the handlers, because ``textcall --help``
imports this module.

Several processes or nodes: ``torchrun --nproc_per_node=N -m model.train_cli diffusion ...``
(or ``torchrun --no-python textcall train diffusion ...``); gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from model.command_table import register_table

TRAINERS: dict[str, str] = {
    "diffusion": "model.diffusion.train_cli:register_diffusion",
    "classifier": "model.diffusion.train_cli:register_classifier",
    "syncnet": "model.lipsync.cli:register_train_syncnet",
    "lipsync": "model.lipsync.cli:register_train_lipsync",
    "gender": "model.evaluation.train_cli:register_gender",
    "portrait": "model.portrait.train_cli:register_portrait",
    "identity": "model.evaluation.train_cli:register_identity",
    "restore": "model.restore.train_cli:register_restore",
    "portrait-clean": "model.restore.train_cli:register_portrait_clean",
    "upscale": "model.restore.train_cli:register_upscale",
    "mouth": "model.restore.train_cli:register_mouth",
    "captions": "model.describe.train_cli:register_captions",
    "attributes": "model.describe.train_cli:register_attributes",
}


def register(subparsers) -> None:
    register_table(
        subparsers,
        "train",
        help="train the receiver's models (diffusion, classifier, ...)",
        description="Train one of the receiver's models on the cached corpus segments.",
        table=TRAINERS,
    )


# -- what the trainers' parsers share --------------------------------------------------------------
def set_threads(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def print_last(name: str, last: dict, where: str) -> None:
    """A run's last logged figures, printed once: by the main process of a ``torchrun`` launch."""
    if int(os.environ.get("RANK", "0")) == 0:
        summary = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in last.items())
        print(f"{name}: {summary}; {where}")


def run_flags(sub) -> None:
    """Where and how a trainer runs: the flags the newer trainers share."""
    sub.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    sub.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--no-amp", action="store_true", help="float32 instead of bf16 autocast")
    sub.add_argument("--no-progress", action="store_true", help="no progress bar")


def describe_flags(sub, *, condition_lr_scale: float | None) -> None:
    """``--describe``, ``--attribute-dropout`` and ``--condition-lr-scale``: the options of a trainer whose
    network can read description vectors (free-form captions, ``model/describe``) instead of the
    paper's caption index (the portrait model, the joint model). A classifier (``condition_lr_scale``
    None) has only ``--describe``: it learns from full descriptions and has no map over them."""
    sub.add_argument("--describe", action="store_true",
                     help="condition on description vectors (free-form captions: gender, hair, skin, glasses, ...;\n"
                          "model/describe) instead of the paper's caption index; with --init, a caption-index\n"
                          "model's weights are converted exactly (the run starts from exactly what they drew)")
    if condition_lr_scale is None:
        return
    sub.add_argument("--attribute-dropout", type=float, default=0.5,
                     help="--describe: chance each attribute is left unsaid in a training caption (default %(default)s)")
    sub.add_argument("--condition-lr-scale", type=float, default=condition_lr_scale,
                     help="--describe: learning rate of the description's linear map, times --lr (default %(default)s;\n"
                          "its columns for every attribute but gender start at zero after a conversion)")


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
