"""The `ecs-operator` command. Subcommands import their modules lazily so `convert` starts fast."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module holding `add_arguments(parser)` and `run(args) -> int`, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("ecs_operator.convert.command", "translate ECS JSON/YAML into custom resources or Kubernetes objects"),
    "run": ("ecs_operator.runner", "run the operator (kopf) against the current kubeconfig"),
    "sandbox": ("ecs_operator.sandbox.command", "a local Kubernetes control plane with simulated nodes"),
    "crds": ("ecs_operator.crdgen.command", "write the generated CustomResourceDefinitions"),
    "api": ("ecs_operator.api.command", "serve ECS's API (aws-cli, boto3) on the custom resources"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="ecs-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    name = next((a for a in argv if not a.startswith("-")), None)
    for command, (module, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(command, help=help_text)
        if command == name:  # only the chosen subcommand's module is imported
            importlib.import_module(module).add_arguments(sub_parser)
    args = parser.parse_args(argv)
    return int(importlib.import_module(SUBCOMMANDS[args.command][0]).run(args))


if __name__ == "__main__":
    sys.exit(main())
