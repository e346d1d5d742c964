"""``textcall eval WHAT``: evaluation commands of the model package.

Each evaluator is a sub-subcommand registered from the ``EVALUATORS`` table ("module:function" of a
``register(subparsers)`` that adds one parser with ``set_defaults(run=handler)``); another evaluator
is one more line. Module import stays light (argparse only): ``textcall --help`` imports this module.
"""

from __future__ import annotations

from model.command_table import register_table

EVALUATORS: dict[str, str] = {
    "sync": "model.lipsync.cli:register_eval_sync",
    "model": "model.evaluation.cli:register_eval_model",
    "calls": "model.evaluation.cli:register_eval_calls",
    "captions": "model.describe.train_cli:register_eval_captions",
}


def register(subparsers) -> None:
    register_table(
        subparsers,
        "eval",
        help="measure generated or recorded talking heads (sync, ...)",
        description="Evaluate talking-head videos.",
        table=EVALUATORS,
    )
