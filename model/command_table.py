"""A command whose sub-commands come from a table: ``textcall train WHAT``, ``textcall eval WHAT``.

Each table maps a name to ``"module:function"``, a ``register(subparsers)`` that adds one parser with
``set_defaults(run=handler)``; another sub-command is one more line. Only argparse is imported here,
so ``textcall --help`` stays light; a sub-command whose package is missing from this install is
left out (logged at debug level).
"""

from __future__ import annotations

import argparse
import importlib
import logging

logger = logging.getLogger(__name__)


def register_table(subparsers, name: str, *, help: str, description: str, table: dict[str, str]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help, description=description)
    kinds = parser.add_subparsers(dest=f"{name}_command", metavar="WHAT")
    for entry, target in table.items():
        module, func = target.split(":")
        try:
            getattr(importlib.import_module(module), func)(kinds)
        except ImportError as exc:
            logger.debug("textcall %s %s unavailable: %s", name, entry, exc)

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(run=show_help)
    return parser
