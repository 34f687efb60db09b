"""How fast `ecs-operator convert` is: conversions per second over the corpus, and CLI start-up.

Not a test (timings depend on the machine); each number is printed beside a baseline measured in
the same run on the same machine, and the ratio:

- throughput: parse + detect + validate + translate + report + YAML of every corpus file that
  converts (the `convert --to k8s --report json` path, in one process), against plain `json.loads`
  + pydantic `model_validate` of the same documents. Goal: >= 2,000 task definitions per second.
- start-up: wall time of `ecs-operator convert <the mission example>` as a new process, against
  `python -c "import json"`. Goal: < 0.5 s.

    .venv/bin/python benchmarks/bench_convert.py [--seconds 3] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
MISSION = '{\n "family": "nginx-demo",\n "containerDefinitions": [\n {\n "name": "nginx",\n "image": "nginx",\n }\n ]\n}\n'
# The AWS CLI create-service example names this task definition; it is not in the corpus.
ECS_DEMO = {"family": "ecs-demo", "containerDefinitions": [
    {"name": "simple-demo", "image": "httpd:2.4", "memory": 300, "portMappings": [{"containerPort": 80, "hostPort": 80}]}]}


def rate(work: Callable[[], int], seconds: float) -> float:
    """Items per second: `work` returns how many items it handled; repeated for `seconds`, best of 3 rounds."""
    best = 0.0
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            done += work()
        best = max(best, done / elapsed)
    return best


def throughput(seconds: float) -> None:
    from ecs_operator.convert.batch import convert_files
    from ecs_operator.convert.detect import detect
    from ecs_operator.convert.load import parse
    from ecs_operator.convert.pipeline import convert
    from ecs_operator.convert.report import report_json
    from ecs_operator.models import TaskDefinitionSpec

    texts = {str(p): p.read_text() for p in sorted(CORPUS.glob("*.json"))}
    texts["ecs-demo.json"] = json.dumps(ECS_DEMO)
    runs: list[list[str]] = []  # every file that converts, alone or with the task definition it names
    for file in (f for f in texts if f != "ecs-demo.json"):
        for files in ([file], [file, "ecs-demo.json"]):
            if convert_files(files, "k8s", None, texts).conversions:
                runs.append(files)
                break
    task_definitions = [files for files in runs
                        if [c.obj.kind for c in convert_files(files, "k8s", None, texts).conversions] == ["TaskDefinition"]]

    def pipeline(batch: list[list[str]]) -> Callable[[], int]:
        """parse + detect + validate + translate + report, as `convert --to k8s --report json` does."""
        def work() -> int:
            done = 0
            for files in batch:
                objects = [(obj, i) for f in files for d in parse(f, texts[f]) for i, obj in enumerate(detect(d))]
                outcome = convert(objects, "k8s", None)
                report_json(outcome.conversions, "k8s")
                done += len(outcome.conversions)
            return done
        return work

    def command(batch: list[list[str]]) -> Callable[[], int]:
        """The whole command without process start and file reads: also the YAML output."""
        def work() -> int:
            done = 0
            for files in batch:
                result = convert_files(files, "k8s", None, texts)
                result.report("json")
                done += len(result.conversions)
            return done
        return work

    # Baseline: what any pydantic-based tool pays at least: parse and validate the same task definitions.
    raw = [json.dumps(convert_files(f, "k8s", None, texts).conversions[0].obj.spec) for f in task_definitions]

    def baseline() -> int:
        for text in raw:
            TaskDefinitionSpec.model_validate(json.loads(text))
        return len(raw)

    base = rate(baseline, seconds)
    print(f"corpus: {len(runs)} convertible files, {len(task_definitions)} of them task definitions")
    print(f"baseline json.loads + model_validate:      {base:8.0f} task definitions/s")
    for label, make in (("pipeline (parse..report)", pipeline), ("command (+ YAML output)", command)):
        td = rate(make(task_definitions), seconds)
        every = rate(make(runs), seconds)
        print(f"{label:25s} task definitions: {td:8.0f}/s (goal >= 2000; {base / td:5.1f}x the baseline's time)"
              f"   all files: {every:6.0f} conversions/s")


# An installed package has its .pyc files (pip compiles them); a PYTHONDONTWRITEBYTECODE=1 in the
# environment (some CI images set it) would make every start compile the package from source.
BYTECODE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=BYTECODE_ENV)
        times.append(time.perf_counter() - start)
    return times


def startup(runs: int) -> None:
    command = Path(sys.executable).parent / "ecs-operator"
    with tempfile.TemporaryDirectory() as tmp:
        mission = Path(tmp) / "mission.json"
        mission.write_text(MISSION)
        wall([str(command), "convert", str(mission)], 2)  # warm the page cache and .pyc files
        ours = wall([str(command), "convert", str(mission)], runs)
        base = wall([sys.executable, "-c", "import json"], runs)
    m, b = statistics.median(ours), statistics.median(base)
    print(f"start-up `ecs-operator convert mission.json`: median {m:.3f} s, min {min(ours):.3f} s over {runs} runs "
          f"(goal < 0.5 s)")
    print(f"baseline `python -c 'import json'`:        median {b:.3f} s, min {min(base):.3f} s   ratio {m / b:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per throughput measurement")
    parser.add_argument("--runs", type=int, default=20, help="process starts per start-up measurement")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"the corpus {CORPUS} is missing (it lives in ../shared/corpus beside the repository)")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other processes skew both numbers and baselines)")
    throughput(args.seconds)
    startup(args.runs)


if __name__ == "__main__":
    main()
