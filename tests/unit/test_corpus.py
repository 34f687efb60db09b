"""Every real-world ECS file in ../shared/corpus converts, or is refused with a clear message.

EXPECTED says, per file, what must happen and why. A file added to the corpus without a row here
fails the test, so nothing is skipped silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_operator.cli import main

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
NOT_ECS = {"README.md", "MANIFEST.tsv"}

# The task definition the AWS CLI's create-service example names (`"taskDefinition": "ecs-demo"`),
# as its documentation registers it: --to k8s needs it in the same run.
ECS_DEMO = {"family": "ecs-demo", "containerDefinitions": [
    {"name": "simple-demo", "image": "httpd:2.4", "memory": 300, "portMappings": [{"containerPort": 80, "hostPort": 80}]}]}


@dataclass(frozen=True)
class Expected:
    converts: bool
    why: str
    messages: tuple[str, ...] = ()
    """Converting files: warnings on stderr; refused files: the error lines (after `<file>: `)."""
    k8s_needs_task_definition: bool = False


EXPECTED: dict[str, Expected] = {
    "appmesh-firelens-envoy-proxyconfig-fargate.json": Expected(
        True, "FARGATE/awsvpc; proxyConfiguration and firelensConfiguration are reported unsupported"),
    "awscli-cluster-capacity-providers-output.json": Expected(
        True, "put-cluster-capacity-providers output: `cluster` wrapper and read-only fields dropped; "
              "a Cluster makes no Kubernetes objects"),
    "awscli-create-service-classic-elb-input.json": Expected(
        True, "CreateService input naming task definition ecs-demo, which is not in the corpus: --to k8s alone "
              "refuses it, --to k8s with ECS_DEMO converts", k8s_needs_task_definition=True),
    "awscli-register-output-sleep360-describe.json": Expected(
        True, "register-task-definition output: `taskDefinition` wrapper, read-only fields dropped, revision 2 kept"),
    "awsdocs-gelf-udp-fragment.json": Expected(
        False, "a fragment (a member without its object's braces) copied from the docs",
        ('not valid JSON at line 1 column 23 (it is a fragment: a member such as "containerDefinitions": [...] '
         "without the { } of its object): Extra data",)),
    "awsdocs-webserver-fargate-linux.json": Expected(True, "the developer guide's FARGATE web server"),
    "console-export-nulls-haproxy-fargate.json": Expected(
        True, "console export: ~30 explicit nulls mean absent; flattened describe fields dropped"),
    "consul-server-host-network-dockerlabels.json": Expected(
        True, "host network mode converts; the operator's workload policy wants the namespace's opt-in (warning)",
        ("warning: networkMode: host network mode is refused by the workload policy (feature hostNetwork)",)),
    "dependson-all-conditions-six-containers.json": Expected(
        True, "dependsOn SUCCESS/COMPLETE/HEALTHY become init containers and sidecars"),
    "ecs-exec-unit-strings-init-process.json": Expected(True, 'task cpu ".25 vcpu" and memory ".5 gb" are FARGATE 256/512'),
    "firelens-efs-config-describe-output.json": Expected(True, "describe output wrapper; EFS volume over NFS"),
    "ghactions-describe-flattened-nonblocking-awslogs.json": Expected(
        True, "flattened describe output: read-only fields dropped"),
    "gpu-resourcerequirements-ec2.json": Expected(True, "GPU resourceRequirements -> nvidia.com/gpu"),
    "linuxparameters-capabilities-add-drop.json": Expected(
        True, "SYS_ADMIN is beyond the baseline capabilities: converts with the workload-policy warning",
        ("warning: containerDefinitions[0].linuxParameters.capabilities.add: added capabilities SYS_ADMIN is refused "
         "by the workload policy",)),
    "otel-cwagent-daemon-bridge-hostpaths.json": Expected(
        False, "mustache template: the unquoted {{command}} is not JSON",
        ("not valid JSON at line 16 column 10 (it looks like a mustache/Go template (e.g. ecspresso): "
         "{{ecsTaskExecutionRoleArn}}, {{command}}, {{ecsTaskRoleArn}}): Expecting property name enclosed in double quotes",)),
    "pidmode-host-minimal.json": Expected(
        True, "pidMode host -> hostPID (workload-policy warning)",
        ("warning: pidMode: the host's PID namespace is refused by the workload policy (feature hostPID)",)),
    "repositorycredentials-private-registry-asm.json": Expected(
        True, "$$$NAME$$$ placeholders sit in string values: valid ECS, kept as text with a warning",
        ("warning: it looks like a $$$NAME$$$ placeholder (ECS agent tests): $$$EXECUTION_ROLE$$$, "
         "$$$REPOSITORY_CREDENTIALS$$$",)),
    "service-ecspresso-capacityprovider-spot-circuitbreaker.json": Expected(
        False, "ecspresso keeps taskDefinition and desiredCount out of the service file: CreateService requires them",
        ("desiredCount: desiredCount is required for REPLICA services",
         "taskDefinition: taskDefinition is required (family, family:revision or ARN)")),
    "service-ecspresso-service-connect-server.json": Expected(
        False, "ecspresso template without taskDefinition (CreateService rule), with {{ ssm }} placeholders",
        ("taskDefinition: taskDefinition is required (family, family:revision or ARN)",
         "it looks like a mustache/Go template (e.g. ecspresso): {{ ssm `/ecs/service-connect-cdk/internal-sg-id` }}")),
    "skeleton-all-fields-generate-cli-skeleton.json": Expected(
        False, "generate-cli-skeleton output: its empty-string and zero placeholders break ECS's limits",
        ("family: String should match pattern '^[A-Za-z0-9_-]{1,255}$'",
         "containerDefinitions[0].image: String should have at least 1 character",
         "containerDefinitions[0].portMappings[0].containerPort: Input should be greater than or equal to 1",
         "containerDefinitions[0].healthCheck.interval: Input should be greater than or equal to 5")),
    "systemcontrols-sysctl.json": Expected(True, "systemControls -> Pod sysctls"),
    "tf-containerdefs-envoy-six-ports-ulimits.json": Expected(
        True, "Terraform container_definitions array: family from the file name"),
    "tf-tpl-app-xray-envoy-containerdefs.json": Expected(
        False, "Terraform templatefile: ${container_name} is not a valid container name",
        ("[0].name: String should match pattern '^[A-Za-z0-9_-]{1,255}$'",
         "it looks like a Terraform/envsubst template: ${container_name}, ${container_image}, ${dynamodb_tables} "
         "(and 3 more): render the template first")),
    "volumesfrom-empty-host-volume-links.json": Expected(
        True, "empty host volume -> emptyDir; volumesFrom copies mounts; links -> hostAliases"),
    "windows-gmsa-credentialspec-ssm.json": Expected(
        True, "Windows task with $$$NAME$$$ placeholders in strings (warning)",
        ("warning: it looks like a $$$NAME$$$ placeholder (ECS agent tests): $$$TEST_SSM_ARN$$$, $$$EXECUTION_ROLE$$$",)),
    "wordpress-mysql-links-default-network.json": Expected(
        True, "Terraform ${mysql_password} inside a string value: converts with a warning",
        ("warning: it looks like a Terraform/envsubst template: ${mysql_password}",)),
}


def corpus_files() -> list[str]:
    assert CORPUS.is_dir(), f"the corpus directory {CORPUS} is missing: the tests need ../shared/corpus beside the repository"
    return sorted(p.name for p in CORPUS.iterdir() if p.name not in NOT_ECS)


def test_every_corpus_file_has_an_expectation() -> None:
    files = corpus_files()
    assert set(files) == set(EXPECTED), (
        f"new files without a row in EXPECTED: {sorted(set(files) - set(EXPECTED))}; "
        f"rows without a file: {sorted(set(EXPECTED) - set(files))}")
    manifest = (CORPUS / "MANIFEST.tsv").read_text().splitlines()[1:]
    assert sorted(line.split("\t")[0] for line in manifest if line) == files


def convert(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["convert", *args])
    out, err = capsys.readouterr()
    return code, out, err


def leaf_paths(value: Any, path: str = "") -> set[str]:
    """The test's own walk of an ECS document: one path per scalar, scalar list, free-form map, empty object."""
    if isinstance(value, dict) and value and not path.endswith(("dockerLabels", "options", "driverOpts", "labels")):
        return set().union(*(leaf_paths(v, f"{path}.{k}" if path else k) for k, v in value.items()))
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return set().union(*(leaf_paths(v, f"{path}[{i}]") for i, v in enumerate(value)))
    return {path}


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e.converts))
def test_converts_with_a_verdict_for_every_field(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = str(CORPUS / name)
    output = tmp_path / "out.yaml"
    code, out, err = convert(capsys, "--to", "crs", "--report", "json", "-o", str(output), file)
    assert code == 0, err
    resources = [d for d in yaml.safe_load_all(output.read_text()) if d]
    report = json.loads(out)
    assert [(e["kind"], e["name"]) for e in report] == [(r["kind"], r["metadata"]["name"]) for r in resources]
    for entry, resource in zip(report, resources):
        ecs = {k: v for k, v in resource["spec"].items() if k != "kubernetes"}
        assert [f["path"] for f in entry["fields"]] and {f["path"] for f in entry["fields"]} == leaf_paths(ecs)
        assert len(entry["fields"]) == len({f["path"] for f in entry["fields"]}), "one verdict per field"
        assert all(f["verdict"] in ("exact", "approximated", "unsupported") for f in entry["fields"])
        assert not [f["path"] for f in entry["fields"] if f["note"] == "no mapping for this field"]
    for message in EXPECTED[name].messages:
        assert f"{file}: {message}" in err

    extra = [str(tmp_path / "ecs-demo.json")] if EXPECTED[name].k8s_needs_task_definition else []
    if extra:
        Path(extra[0]).write_text(json.dumps(ECS_DEMO))
        code, _, err = convert(capsys, "--to", "k8s", file)
        assert code == 2 and f"{file}: taskDefinition: task definition 'ecs-demo' is not among the inputs" in err
    code, out, err = convert(capsys, "--to", "k8s", "--report", "json", "-o", str(output), file, *extra)
    assert code == 0, err
    objects = [d for d in yaml.safe_load_all(output.read_text()) if d]
    report = json.loads(out)
    assert [o for e in report for o in e["objects"]] == [f"{o['kind']}/{o['metadata']['name']}" for o in objects]
    for entry in report:
        if entry["kind"] in ("TaskDefinition", "Service", "Task"):
            assert entry["objects"], f"{entry['kind']} {entry['name']} made no Kubernetes objects"
        else:
            assert entry["objects"] == [] and "no plain Kubernetes objects" in entry["note"]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if not e.converts))
@pytest.mark.parametrize("to", ["crs", "k8s"])
def test_refused_with_a_clear_message(name: str, to: str, capsys: pytest.CaptureFixture[str]) -> None:
    file = str(CORPUS / name)
    code, out, err = convert(capsys, "--to", to, file)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines and all(line.startswith(f"{file}: ") for line in lines), err
    for message in EXPECTED[name].messages:
        assert any(line.startswith(f"{file}: {message}") for line in lines), f"expected {message!r} in:\n{err}"


def test_the_whole_corpus_through_the_installed_command() -> None:
    """One run of the console script over every file, as a user would: no traceback, every refusal named."""
    command = Path(sys.executable).parent / "ecs-operator"
    files = [str(CORPUS / name) for name in corpus_files()]
    result = subprocess.run([str(command), "convert", "--to", "k8s", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    refused = {name for name, e in EXPECTED.items() if not e.converts}
    named = {line.split(":")[0].rsplit("/", 1)[-1] for line in result.stderr.splitlines() if ": warning: " not in line}
    assert named == refused  # translation (and its own checks) waits until every input is valid

    good = [str(CORPUS / name) for name, e in EXPECTED.items() if e.converts and not e.k8s_needs_task_definition]
    result = subprocess.run([str(command), "convert", "--to", "k8s", "--report", "json", *good],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len([d for d in yaml.safe_load_all(result.stdout) if d]) >= len(good) - 1  # the cluster makes none
