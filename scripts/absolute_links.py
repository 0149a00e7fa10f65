"""Release step: the README with absolute links, as PyPI and the napari hub need them.

Relative image and document links (``docs/figures/x.png``, ``docs/igtt.md``) render on GitHub but not
on PyPI or the hub. This turns them into absolute addresses under the "Source Code" URL of
``pyproject.toml`` (images: ``<url>/raw/<ref>/<path>``; pages: ``<url>/blob/<ref>/<path>``), the one
place where the (placeholder) address is set.

Usage::

    python scripts/absolute_links.py [--ref main] [README.md] > README.pypi.md
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: ``[text](target)`` and ``![alt](target)``; the target up to a space or ")".
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)([^)]*)\)")


def source_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The "Source Code" address from ``[project.urls]``, without a trailing slash."""
    found = re.search(r'^"Source Code"\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)  # no tomllib on 3.10
    if found is None:
        raise SystemExit(f'{pyproject}: no "Source Code" address under [project.urls]')
    return found.group(1).rstrip("/")


def absolute(text: str, base: str, ref: str = "main") -> str:
    """``text`` with every relative link made absolute under ``base`` (anchors and URLs untouched)."""

    def fix(match: re.Match) -> str:
        bang, label, target, rest = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            return match.group(0)
        kind = "raw" if bang else "blob"
        return f"{bang}[{label}]({base}/{kind}/{ref}/{target.removeprefix('./')}{rest})"

    return LINK.sub(fix, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("readme", nargs="?", default=str(ROOT / "README.md"))
    parser.add_argument("--ref", default="main", help="branch or tag the links point at (default main)")
    args = parser.parse_args(argv)
    sys.stdout.write(absolute(Path(args.readme).read_text(), source_url(), args.ref))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
