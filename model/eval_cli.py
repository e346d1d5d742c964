"""``textcall eval WHAT``: evaluation commands of the model package.

Each evaluator is a sub-subcommand registered from the ``EVALUATORS`` table ("module:function" of a
``register(subparsers)`` that adds one parser with ``set_defaults(run=handler)``); another evaluator
is one more line. Module import stays light (argparse only): ``textcall --help`` imports this module.
"""

from __future__ import annotations

import argparse
import importlib
import logging

logger = logging.getLogger(__name__)

EVALUATORS: dict[str, str] = {
    "sync": "model.lipsync.cli:register_eval_sync",
    "model": "model.evaluation.cli:register_eval_model",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure generated or recorded talking heads (sync, ...)",
        description="Evaluate talking-head videos.",
    )
    kinds = parser.add_subparsers(dest="eval_command", metavar="WHAT")
    for name, target in EVALUATORS.items():
        module, func = target.split(":")
        try:
            getattr(importlib.import_module(module), func)(kinds)
        except ImportError as exc:  # an evaluator whose package is not in this install
            logger.debug("evaluator %s unavailable: %s", name, exc)

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(run=show_help)
