"""Command line: ``metastructures <subcommand> ...``, thin wrappers over the core."""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

#: Subcommand modules, each with ``register(subparsers)`` that sets ``func(args) -> int``.
SUBCOMMANDS = ["view", "demo", "noise", "density", "igtt", "train", "predict", "baseline", "evaluate", "study",
               "transfer", "export_bioimageio"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metastructures",
        description="Noisy labels, meta-structure density maps and unsupervised iGTT segmentation.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, also print the traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a failure becomes one ``error: ...`` line on stderr, never a traceback.

    Exit codes: 0 done; 1 a failed run (out of memory, diverged training, an output that cannot be
    written); 2 bad input or usage (InputError, DeviceError, argument errors); 3 an internal error
    (a bug: please report it); 130 interrupted. ``--debug``, anywhere on the line, also prints the
    traceback (and lets an internal error propagate).
    """
    from ..core.device import DeviceError
    from ..core.progress import OutOfMemoryAdvice
    from ..core.training.loop import TrainingDiverged
    from ..core.validate import InputError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (InputError, DeviceError) as err:
        return _fail(err, 2, debug)
    except (OutOfMemoryAdvice, TrainingDiverged) as err:
        return _fail(err, 1, debug)
    except OSError as err:
        return _fail(_os_message(err), 1, debug)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: one line; with --debug, Python's own traceback
        if debug:
            raise
        return _fail(f"internal error ({type(err).__name__}: {err}); run again with --debug for the "
                     "traceback; please report it", 3)


def _fail(message, code: int, debug: bool = False) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    return code


def _os_message(err: OSError) -> str:
    """``<path>: <reason>`` for a file error, else the error's own text."""
    if err.filename is None or not err.strerror:
        return str(err)
    if isinstance(err, (FileExistsError, NotADirectoryError)):  # a file where a folder should be
        return f"{err.filename}: {err.strerror} (a file stands where the output needs a folder)"
    return f"{err.filename}: {err.strerror}"
