"""`ecs-operator convert`: its arguments, where the YAML and the report go, and its exit status."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

EXIT_INVALID = 2
DESCRIPTION = """\
Translate ECS JSON or YAML (as pasted, exported by describe-*, or kept in Terraform) into this
project's custom resources, or into the Kubernetes objects the operator would create, with a
report of how faithful each field's translation is.

examples:
  ecs-operator convert taskdef.json | kubectl apply -f -
  ecs-operator convert --to k8s service.json taskdef.json -o objects.yaml
  aws ecs describe-task-definition --task-definition web | ecs-operator convert - --report json

exit status: 0 converted (unsupported fields included: the report names them), 2 invalid input
(each error names the file and the JSON path), 1 a bug of this command.
"""
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="ECS JSON or YAML: task definitions (also describe-task-definition output and "
                             "containerDefinitions arrays, whose family is the file name), services, run-task "
                             "input, clusters, capacity providers, or custom resources; '-' reads standard input")
    parser.add_argument("--to", choices=("crs", "k8s"), default="crs",
                        help="crs (default): custom resources for the operator; k8s: the Pods, Deployments, "
                             "Services... the operator would create (services and tasks need their task "
                             "definition among the inputs)")
    parser.add_argument("-n", "--namespace", help="namespace of the written objects (default: none, kubectl's current)")
    parser.add_argument("--report", choices=("text", "json", "none"), default="text",
                        help="fidelity report: one verdict (exact, approximated, unsupported) per input field "
                             "(default text; on stderr, or on stdout with -o)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the YAML here instead of stdout")


def run(args: argparse.Namespace) -> int:
    from .batch import convert_files  # imported here: `convert --help` needs none of it
    from .load import STDIN

    if args.namespace is not None and not _DNS_LABEL.match(args.namespace):
        print(f"--namespace {args.namespace!r}: not a valid namespace name (lowercase letters, digits and '-')",
              file=sys.stderr)
        return EXIT_INVALID
    files = args.files or [STDIN]
    if files == [STDIN] and sys.stdin.isatty():
        print("ecs-operator convert: give FILE arguments, or pipe a document into '-'", file=sys.stderr)
        return EXIT_INVALID
    try:
        result = convert_files(files, args.to, args.namespace)
    except Exception as e:  # a bug: say so in one line, never a traceback
        print(f"ecs-operator convert: internal error ({type(e).__name__}: {e}); please report it with the input",
              file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"{warning.where}: warning: {warning.path + ': ' if warning.path else ''}{warning.message}",
              file=sys.stderr)
    if result.problems:
        for problem in result.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    report_stream = sys.stderr
    if args.output:
        try:
            Path(args.output).write_text(result.yaml)
        except OSError as e:
            print(f"{args.output}: cannot write it: {e.strerror or e}", file=sys.stderr)
            return EXIT_INVALID
        report_stream = sys.stdout
    else:
        sys.stdout.write(result.yaml)
    if args.report != "none":
        report_stream.write(result.report(args.report))
    return 0
