"""Run named benchmarks and print one table row each; also writes benchmarks/results.json.

Usage::

    python benchmarks/run.py            # list the benchmarks
    python benchmarks/run.py all        # run every benchmark
    python benchmarks/run.py noise density   # run some

Each ``bench_<name>.py`` module defines ``run(quick: bool) -> list[Row]``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import format_table  # noqa: E402


def available() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="benchmarks to run, or 'all'")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    names = available() if args.names == ["all"] else args.names
    if not names:
        print("benchmarks:", ", ".join(available()))
        return 0
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}")
        return 2
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    all_rows = []
    for name in names:
        module = importlib.import_module(f"bench_{name}")
        t0 = time.perf_counter()
        rows = module.run(quick=args.quick)
        all_rows.extend(rows)
        results[name] = {
            "rows": [r.as_dict() for r in rows],
            "seconds": time.perf_counter() - t0,
            "quick": args.quick,
            "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        print(format_table(rows), flush=True)
    out.write_text(json.dumps(results, indent=2))
    print()
    print(format_table(all_rows))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
