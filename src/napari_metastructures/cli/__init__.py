"""Command line: ``metastructures <subcommand> ...``, thin wrappers over the core."""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

#: Subcommand modules, each with ``register(subparsers)`` that sets ``func(args) -> int``.
SUBCOMMANDS = ["view", "demo", "noise", "density", "igtt", "predict", "baseline", "evaluate", "study"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metastructures",
        description="Noisy labels, meta-structure density maps and unsupervised iGTT segmentation.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..core.validate import InputError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
