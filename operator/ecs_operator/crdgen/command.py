"""`ecs-operator crds [--out DIR] [--check]`: write (or check) the generated CRDs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .crd import render_all

DEFAULT_DIRS = ("crds", "charts/ecs-operator/crds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", action="append", help=f"directory to write (repeatable; default: {', '.join(DEFAULT_DIRS)})")
    parser.add_argument("--check", action="store_true", help="exit 1 when the files differ from the models")


def run(args: argparse.Namespace) -> int:
    stale: list[str] = []
    for directory in map(Path, args.out or DEFAULT_DIRS):
        for name, text in render_all().items():
            path = directory / name
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        print("out of date (run `ecs-operator crds`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0
