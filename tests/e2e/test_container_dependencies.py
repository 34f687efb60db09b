"""ECS's container semantics inside one task: `essential` and `dependsOn` as an ECS user writes them
(docs/ecs-semantics.md §Essential containers and dependsOn).

kwok plays the ECS agent: `sim.ecs.operator.dev/exit` (through the TaskDefinition's
`kubernetes.podAnnotations`) makes a container exit with a code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ecs_objects import API, apply_all, cluster, container, pods, status, task, task_definition
from operator_fixtures import wait_for
from service_support import steady

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")

HEALTH = {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"], "interval": 5, "retries": 2}


def exits(container_name: str, code: int, after: str = "3s") -> dict[str, Any]:
    return {"podAnnotations": {"sim.ecs.operator.dev/exit": f"{container_name}={code}",
                               "sim.ecs.operator.dev/exit-after": after}}


def containers_of(task_status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in task_status["tasks"][0]["containers"]}


def stopped_container(sandbox: Cluster, namespace: str, task_name: str, name: str) -> dict[str, Any]:
    """The task's status once `name` is reported STOPPED."""
    return wait_for(lambda: (s := status(sandbox, "task", task_name, namespace)).get("tasks")
                    and containers_of(s)[name]["lastStatus"] == "STOPPED" and s,
                    timeout=90, what=f"container {name} STOPPED")


def test_an_essential_server_keeps_running_after_the_job_that_waited_for_it_finishes(
        sandbox: Cluster, namespace: str) -> None:
    """A non-essential seeding job waits for the API (HEALTHY) and its cache (START), runs, exits 0:
    ECS keeps the task RUNNING on its essential containers."""
    apply_all(sandbox, namespace, cluster(),
              task_definition("seeded",
                              container("api", "public.ecr.aws/acme/api:2.4", memory=256, healthCheck=HEALTH,
                                        portMappings=[{"containerPort": 8080}]),
                              container("cache", "redis:7", memory=128),
                              container("seed", "public.ecr.aws/acme/api:2.4", memory=64, essential=False,
                                        command=["./seed-database.sh"],
                                        dependsOn=[{"containerName": "api", "condition": "HEALTHY"},
                                                   {"containerName": "cache", "condition": "START"}]),
                              kubernetes=exits("seed", 0)),
              task("seeded", "seeded"))
    done = stopped_container(sandbox, namespace, "seeded", "seed")

    assert containers_of(done)["seed"]["exitCode"] == 0
    assert (done["lastStatus"], done["desiredStatus"]) == ("RUNNING", "RUNNING"), done
    assert "stopCode" not in done
    assert {n: c["lastStatus"] for n, c in containers_of(done).items() if n != "seed"} == {"api": "RUNNING", "cache": "RUNNING"}
    (pod,) = pods(sandbox, namespace, "seeded")
    assert pod["status"]["phase"] == "Running" and "initContainers" not in pod["spec"]
    # the kubelet starts containers in this order; the API's postStart hook holds the ones after
    # it until its health check passes (the cache, needed only started, goes first)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["cache", "api", "seed"]
    assert "postStart" in pod["spec"]["containers"][1]["lifecycle"]


def test_a_non_essential_start_target_that_exits_stays_stopped_and_the_task_runs_on(
        sandbox: Cluster, namespace: str) -> None:
    """A config fetcher the app waits for (START) fails with code 3: ECS neither restarts it nor stops the task."""
    apply_all(sandbox, namespace, cluster(),
              task_definition("fetched",
                              container("config-sync", "amazon/aws-cli:2.17", memory=64, essential=False,
                                        command=["s3", "sync", "s3://acme-config/app", "/config"]),
                              container("app", memory=128, dependsOn=[{"containerName": "config-sync", "condition": "START"}]),
                              kubernetes=exits("config-sync", 3)),
              task("fetched", "fetched"))
    done = stopped_container(sandbox, namespace, "fetched", "config-sync")

    assert containers_of(done)["config-sync"]["exitCode"] == 3
    assert (done["lastStatus"], containers_of(done)["app"]["lastStatus"]) == ("RUNNING", "RUNNING")
    (pod,) = pods(sandbox, namespace, "fetched")
    sync = next(c for c in pod["spec"]["containers"] if c["name"] == "config-sync")
    assert sync.get("restartPolicy", pod["spec"]["restartPolicy"]) == "Never"  # not a sidecar the kubelet restarts


def test_complete_starts_the_dependent_whatever_the_exit_code(sandbox: Cluster, namespace: str) -> None:
    """COMPLETE: the app starts after the migration ends, whatever its exit code (SUCCESS waits for 0)."""
    apply_all(sandbox, namespace, cluster(),
              task_definition("migrated",
                              container("migrate", "public.ecr.aws/acme/api:2.4", memory=64, essential=False,
                                        entryPoint=["python", "manage.py"], command=["migrate", "--noinput"]),
                              container("app", "public.ecr.aws/acme/api:2.4", memory=128,
                                        dependsOn=[{"containerName": "migrate", "condition": "COMPLETE"}])),
              task("migrated", "migrated"))
    wait_for(lambda: status(sandbox, "task", "migrated", namespace).get("lastStatus") == "RUNNING", 90, what="task RUNNING")

    (pod,) = pods(sandbox, namespace, "migrated")
    (migrate,) = pod["spec"]["initContainers"]
    # its exit code cannot hold the app back: the migration runs through a shell that ends with 0
    assert migrate["command"][:2] == ["/bin/sh", "-c"] and migrate["command"][-4:] == ["python", "manage.py", "migrate", "--noinput"]
    fidelity = status(sandbox, "taskdefinition", "migrated", namespace)["fidelity"]
    note = next(e for e in fidelity["fields"] if e["path"] == "containerDefinitions[1].dependsOn[0].condition")
    assert note["verdict"] == "approximated" and "exit code" in note["note"], note


def test_an_essential_proxy_started_as_a_native_sidecar_stops_the_task_when_it_exits(
        sandbox: Cluster, namespace: str) -> None:
    """The migration needs the proxy started (START) and the app the migration done (SUCCESS): the proxy
    runs as a native sidecar. It is essential, so its exit stops the task, as ECS does."""
    apply_all(sandbox, namespace, cluster(),
              task_definition("proxied",
                              container("envoy", "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29", memory=128),
                              container("migrate", "public.ecr.aws/acme/api:2.4", memory=64, essential=False,
                                        command=["./migrate.sh"],
                                        dependsOn=[{"containerName": "envoy", "condition": "START"}]),
                              container("app", "public.ecr.aws/acme/api:2.4", memory=128,
                                        dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}]),
                              kubernetes=exits("envoy", 1)),
              task("proxied", "proxied"))
    (pod,) = wait_for(lambda: pods(sandbox, namespace, "proxied"), 30, what="the task's Pod")
    assert {c["name"]: c.get("restartPolicy") for c in pod["spec"]["initContainers"]} == {
        "envoy": "Always", "migrate": None}
    stopped = wait_for(lambda: (s := status(sandbox, "task", "proxied", namespace)).get("lastStatus") == "STOPPED" and s,
                       timeout=90, what="task STOPPED")

    assert (stopped["stopCode"], stopped["stoppedReason"]) == ("EssentialContainerExited",
                                                               "Essential container in task exited")
    assert containers_of(stopped)["envoy"]["exitCode"] == 1


def ready_endpoints(sandbox: Cluster, namespace: str, service_name: str) -> set[str]:
    slices = sandbox.kubectl_json("get", "endpointslices", "-n", namespace, "-l",
                                  f"kubernetes.io/service-name={service_name}")["items"]
    return {address for item in slices for endpoint in item.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready") for address in endpoint["addresses"]}


def test_a_service_task_whose_non_essential_container_exits_stays_behind_its_load_balancer(
        sandbox: Cluster, namespace: str) -> None:
    """A non-essential cache warmer runs once and exits 0: ECS keeps both tasks RUNNING, registered
    in the target group and healthy, and the service steady."""
    apply_all(sandbox, namespace, cluster(),
              task_definition("web",
                              container("app", memory=128, portMappings=[{"containerPort": 80}]),
                              container("warm-cache", "curlimages/curl:8.10.1", memory=32, essential=False,
                                        command=["-sf", "http://localhost/warm"]),
                              kubernetes=exits("warm-cache", 0, "2s")),
              {"apiVersion": API, "kind": "Service", "metadata": {"name": "web"},
               "spec": {"cluster": "default", "taskDefinition": "web:1", "desiredCount": 2,
                        "loadBalancers": [{"containerName": "app", "containerPort": 80, "targetGroupArn":
                                           "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"}]}})

    def warmed() -> list[dict[str, Any]] | None:
        live = [p for p in pods(sandbox, namespace) if not p["metadata"].get("deletionTimestamp")
                and p["status"].get("podIP")]
        done = [p for p in live if any(c["name"] == "warm-cache" and "terminated" in c["state"]
                                       for c in p["status"].get("containerStatuses") or [])]
        return done if len(live) == len(done) == 2 else None

    tasks = wait_for(warmed, 90, what="both tasks' warm-cache container exited")
    addresses = {p["status"]["podIP"] for p in tasks}
    wait_for(lambda: ready_endpoints(sandbox, namespace, "web") == addresses, 60,
             what="both tasks ready behind the Kubernetes Service web")
    state = steady(sandbox, namespace, "web:1", 2)
    assert state["runningCount"] == 2
    assert {p["metadata"]["uid"] for p in warmed() or []} == {p["metadata"]["uid"] for p in tasks}  # none replaced
