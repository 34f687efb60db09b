"""The workload policy and Pod Security Admission on the real control plane.

A privileged TaskDefinition is refused (condition and Event naming the field, no revision) in a
namespace that has not opted in, and registered and run in one that has; a Pod refused by the
namespace's Pod Security level stops its task with TaskFailedToStart and the admission message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecs_operator.handlers.setup import REVISION_KIND_LABEL
from ecs_operator.translate.policy import OPT_IN_LABEL
from operator_fixtures import Operator, apply, get, wait_for

if TYPE_CHECKING:
    from conftest import Cluster

PRIVILEGED = """
apiVersion: ecs.operator.dev/v1alpha1
kind: Cluster
metadata: {name: default}
spec: {clusterName: default}
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata: {name: tool}
spec:
  family: tool
  containerDefinitions:
    - {name: tool, image: busybox, memory: 64, privileged: true}
---
apiVersion: ecs.operator.dev/v1alpha1
kind: Task
metadata: {name: tool}
spec: {cluster: default, taskDefinition: tool}
"""

MISSION = """
apiVersion: ecs.operator.dev/v1alpha1
kind: Cluster
metadata: {name: default}
spec: {clusterName: default}
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata: {name: nginx-demo}
spec:
  family: nginx-demo
  containerDefinitions: [{name: nginx, image: nginx}]
---
apiVersion: ecs.operator.dev/v1alpha1
kind: Task
metadata: {name: nginx}
spec: {cluster: default, taskDefinition: nginx-demo}
"""


def ready_condition(sandbox: Cluster, kind: str, name: str, namespace: str) -> dict[str, Any]:
    obj = get(sandbox, kind, name, namespace)
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})


def warnings(sandbox: Cluster, namespace: str, name: str, reason: str) -> list[str]:
    events = sandbox.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                  f"involvedObject.name={name},reason={reason},type=Warning")["items"]
    return [e["message"] for e in events]


def test_privileged_task_definition_is_refused_unless_the_namespace_opts_in(
    sandbox: Cluster, namespace: str, running_operator: Operator
) -> None:
    apply(sandbox, namespace, PRIVILEGED)
    refused = wait_for(lambda: ready_condition(sandbox, "taskdefinitions.ecs.operator.dev", "tool", namespace),
                       timeout=60, what="the TaskDefinition's Ready condition")
    assert refused["status"] == "False" and refused["reason"] == "RefusedByWorkloadPolicy"
    assert refused["message"].startswith("containerDefinitions[0].privileged: a privileged container is refused by the workload policy")
    assert f"label the namespace {OPT_IN_LABEL}=true" in refused["message"]
    assert wait_for(lambda: warnings(sandbox, namespace, "tool", "RefusedByWorkloadPolicy"), timeout=30,
                    what="the Warning Event") == [refused["message"]]
    revisions = sandbox.kubectl_json("get", "controllerrevisions", "-n", namespace, "-l", REVISION_KIND_LABEL)["items"]
    assert revisions == [] and "revision" not in get(sandbox, "taskdefinitions.ecs.operator.dev", "tool", namespace)["status"]
    task = wait_for(lambda: ready_condition(sandbox, "tasks.ecs.operator.dev", "tool", namespace), timeout=60, what="the Task's condition")
    assert task["status"] == "False"  # nothing to run: no revision of "tool" is registered
    assert sandbox.kubectl_json("get", "pods", "-n", namespace)["items"] == []

    # opting the namespace in later registers the revision and runs the waiting task
    sandbox.kubectl("label", "namespace", namespace, f"{OPT_IN_LABEL}=true")
    wait_for(lambda: get(sandbox, "tasks.ecs.operator.dev", "tool", namespace).get("status", {}).get("lastStatus") == "RUNNING",
             timeout=90, what="the task RUNNING after the namespace opted in")
    assert ready_condition(sandbox, "taskdefinitions.ecs.operator.dev", "tool", namespace)["reason"] == "Registered"


def test_privileged_task_runs_in_an_opted_in_namespace(sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    sandbox.kubectl("label", "namespace", namespace, f"{OPT_IN_LABEL}=true")
    apply(sandbox, namespace, PRIVILEGED)
    task = wait_for(lambda: (t := get(sandbox, "tasks.ecs.operator.dev", "tool", namespace)).get("status", {}).get("lastStatus") == "RUNNING" and t,
                    timeout=120, what="the privileged task RUNNING")
    assert task["status"]["taskDefinition"] == "tool:1"
    assert ready_condition(sandbox, "taskdefinitions.ecs.operator.dev", "tool", namespace)["status"] == "True"
    pod = sandbox.kubectl_json("get", "pod", task["status"]["tasks"][0]["podName"], "-n", namespace)
    assert pod["spec"]["containers"][0]["securityContext"]["privileged"] is True


def test_pod_security_admission_refusal_stops_the_task(sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    sandbox.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    apply(sandbox, namespace, MISSION)
    task = wait_for(lambda: (t := get(sandbox, "tasks.ecs.operator.dev", "nginx", namespace)).get("status", {}).get("lastStatus") == "STOPPED" and t,
                    timeout=120, what="the refused task STOPPED")
    [record] = task["status"]["tasks"]
    assert record["stopCode"] == "TaskFailedToStart"
    assert record["stoppedReason"].startswith("CannotCreateContainerError: ")
    assert 'violates PodSecurity "restricted:latest"' in record["stoppedReason"]
    assert (task["status"]["desiredStatus"], task["status"]["stopCode"]) == ("STOPPED", "TaskFailedToStart")
    [message] = wait_for(lambda: warnings(sandbox, namespace, "nginx", "TaskFailedToStart"), timeout=30, what="the Warning Event")
    assert 'violates PodSecurity "restricted:latest"' in message
    assert sandbox.kubectl_json("get", "pods", "-n", namespace)["items"] == []
    assert sandbox.kubectl_json("get", "events", "-n", namespace, "--field-selector", "reason=TaskRunning")["items"] == []


MISSION_SERVICE = MISSION.split("---\napiVersion: ecs.operator.dev/v1alpha1\nkind: Task\n")[0] + """---
apiVersion: ecs.operator.dev/v1alpha1
kind: Service
metadata: {name: web}
spec: {cluster: default, serviceName: web, taskDefinition: nginx-demo, desiredCount: 2}
"""


def test_pod_security_admission_refusal_shows_in_the_service_status(sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    sandbox.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    apply(sandbox, namespace, MISSION_SERVICE)
    refused = wait_for(lambda: (c := ready_condition(sandbox, "services.ecs.operator.dev", "web", namespace)).get("reason") == "TaskLaunchFailed" and c,
                       timeout=120, what="the Service's Ready condition TaskLaunchFailed")
    assert refused["status"] == "False" and 'violates PodSecurity "restricted:latest"' in refused["message"]
    status = get(sandbox, "services.ecs.operator.dev", "web", namespace)["status"]
    assert (status["runningCount"], status["desiredCount"]) == (0, 2)
    assert any(e["message"].startswith("(service web) failed to launch a task with (error ") and "violates PodSecurity" in e["message"]
               for e in status["events"])
    assert wait_for(lambda: warnings(sandbox, namespace, "web", "TaskLaunchFailed"), timeout=30, what="the Warning Event")
