"""FireLens on the real control plane (docs/conversion.md §Logs and FireLens): a FireLens task definition of the
corpus, run as a Task and as a Service, gets its log router with the configuration the ECS agent would generate,
as a ConfigMap the Task or Service controls, mounted where the agent mounts its file, whose outputs are the
awsfirelens container's options. Under 60 s once the sandbox is up (both run in one namespace, in parallel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from operator_fixtures import get, wait_for
from ecs_objects import wait_task
from service_support import ECS_SERVICE, apply_all, cluster, manifest, service, status

from ecs_operator import labels as L

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CORPUS_FILE = "appmesh-firelens-envoy-proxyconfig-fargate.json"


def outputs(text: str) -> dict[str, dict[str, str]]:
    """A fluent-bit file's [OUTPUT] sections: Match -> the other entries."""
    found: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        if lines and lines[0] == "[OUTPUT]":
            entries = dict(line.strip().split(" ", 1) for line in lines[1:])
            found[entries.pop("Match")] = entries
    return found


def router_mounts_its_configuration(pod_spec: dict[str, Any], config_map: str) -> bool:
    router = next((c for c in pod_spec.get("containers", []) if c["name"] == "log-router"), None)
    if router is None:
        return False
    volume = next((v["name"] for v in pod_spec.get("volumes", []) if v.get("configMap", {}).get("name") == config_map), None)
    return any(m["name"] == volume and m["mountPath"] == "/fluent-bit/etc/fluent-bit.conf"
               for m in router.get("volumeMounts", []))


def test_corpus_firelens_definition_gets_its_router_and_the_agents_configuration(sandbox: Any, namespace: str,
                                                                                  running_operator: Any) -> None:
    definition = json.loads((CORPUS / CORPUS_FILE).read_text())
    family = definition["family"]
    envoy = next(c for c in definition["containerDefinitions"] if c["name"] == "envoy")["logConfiguration"]["options"]
    apply_all(sandbox, namespace, cluster(), manifest("TaskDefinition", family, definition),
              manifest("Task", "colors", {"taskDefinition": family, "launchType": "EC2"}),
              service("web", f"{family}:1", desired=1, launchType="EC2"))

    for kind, owner, config_map in (("Task", "colors", "colors-firelens"), ("Service", "web", "web-firelens")):
        found = wait_for(lambda: get(sandbox, "configmap", config_map, namespace), 45, what=f"ConfigMap {config_map}")
        [ref] = found["metadata"]["ownerReferences"]
        owner_uid = get(sandbox, ECS_SERVICE if kind == "Service" else "tasks.ecs.operator.dev", owner, namespace)["metadata"]["uid"]
        assert (ref["kind"], ref["uid"], ref.get("controller")) == (kind, owner_uid, True)
        text = found["data"]["fluent-bit.conf"]
        assert outputs(text) == {"firelens-healthcheck": {"Name": "null"}, "envoy-firelens*": envoy}
        assert f"    Record ecs_task_definition {family}:1\n" in text and "    Record ecs_cluster default\n" in text
        assert "@INCLUDE /fluent-bit/conf/parse_envoy.conf\n" in text

    task_pod = wait_for(lambda: get(sandbox, "pod", "colors-0", namespace), 30, what="the task's Pod")
    assert router_mounts_its_configuration(task_pod["spec"], "colors-firelens")
    assert task_pod["metadata"]["labels"][L.TASK] == "colors"
    deployment = wait_for(lambda: get(sandbox, "deployment", "web", namespace), 30, what="the service's Deployment")
    assert router_mounts_its_configuration(deployment["spec"]["template"]["spec"], "web-firelens")
    # the router starts before the container that logs to it, as the ECS agent starts it
    names = [c["name"] for c in task_pod["spec"]["containers"]]
    assert names.index("log-router") < names.index("envoy")
    # both run with it: the task reaches RUNNING, the service runs its task
    wait_task(sandbox, namespace, "colors", "RUNNING", timeout=45)
    wait_for(lambda: status(sandbox, namespace, "web").get("runningCount") == 1, 45, what="the service's task running")
