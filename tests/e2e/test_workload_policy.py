"""The workload policy, ECS's bounds and Pod Security Admission on the real control plane.

A privileged TaskDefinition is refused (condition and Event naming the field, no revision) in a
namespace that has not opted in, and registered and run in one that has; so is each other
host-level or security-weakening setting, written by a tenant who may only use ECS objects; a
Pod refused by the namespace's Pod Security level stops its task with TaskFailedToStart and the
admission message; desiredCount and RunTask's count stay within ECS's quotas at admission.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ecs_objects import cluster, container, pods, task, task_definition
from ecs_operator import API_GROUP
from ecs_operator.handlers.setup import REVISION_KIND_LABEL
from ecs_operator.translate.policy import NON_ROOT_LABEL, OPT_IN_LABEL
from operator_fixtures import Operator, apply, get, wait_for
from service_support import service
from tenant_support import Tenant, make_tenant

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


# One TaskDefinition per newly gated setting, as the security review's tenant wrote them: the
# field the refusal names, and what the Pod has once the namespace opted in.
TOOL = container("tool", image="busybox", memory=64)
ATTACKS: dict[str, tuple[dict[str, Any], list[str], Any]] = {
    "selinux": (task_definition("selinux", {**TOOL, "dockerSecurityOptions": ["no-new-privileges", "label:type:spc_t"]}),
                ["containerDefinitions[0].dockerSecurityOptions[1]: the SELinux option 'label:type:spc_t' is refused"],
                lambda pod: pod["spec"]["containers"][0]["securityContext"]["seLinuxOptions"] == {"type": "spc_t"}),
    "apparmor": (task_definition("apparmor", {**TOOL, "dockerSecurityOptions": ["apparmor:unconfined"]}),
                 ["containerDefinitions[0].dockerSecurityOptions[0]: the AppArmor profile 'unconfined' is refused"],
                 lambda pod: pod["spec"]["containers"][0]["securityContext"]["appArmorProfile"] == {"type": "Unconfined"}),
    "annotation": (task_definition("annotation", TOOL, kubernetes={
                       "podAnnotations": {"container.apparmor.security.beta.kubernetes.io/tool": "unconfined"}}),
                   ['kubernetes.podAnnotations["container.apparmor.security.beta.kubernetes.io/tool"]: '
                    "the AppArmor profile 'unconfined' is refused"],
                   lambda pod: pod["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/tool"] == "unconfined"),
    "sysctl": (task_definition("sysctl", {**TOOL, "systemControls": [{"namespace": "kernel.core_pattern", "value": "core"}]}),
               ["containerDefinitions[0].systemControls[0].namespace: sysctl kernel.core_pattern (not in Kubernetes' safe set) is refused"],
               lambda pod: {"name": "kernel.core_pattern", "value": "core"} in pod["spec"]["securityContext"]["sysctls"]),
    "hostports": (task_definition("hostports", {**TOOL, "portMappings": [{"containerPort": 22, "hostPort": 22},
                                                                         {"containerPort": 10250, "hostPort": 10250}]}),
                  ["containerDefinitions[0].portMappings[0].hostPort: host port 22 (a privileged port, below 1024) is refused",
                   "containerDefinitions[0].portMappings[1].hostPort: host port 10250 is refused"],
                  lambda pod: [p.get("hostPort") for p in pod["spec"]["containers"][0]["ports"]] == [22, 10250]),
    "reserved": (task_definition("reserved", TOOL, kubernetes={"podLabels": {f"{API_GROUP}/service": "payments"}}),
                 [f'kubernetes.podLabels["{API_GROUP}/service"]: the key \'{API_GROUP}/service\' in a prefix reserved '
                  "for the operator or Kubernetes is refused"],
                 lambda pod: pod["metadata"]["labels"][f"{API_GROUP}/service"] == "payments"),
}


@pytest.fixture
def tenant(sandbox: Cluster, namespace: str, tmp_path: Path) -> Tenant:
    return make_tenant(sandbox, namespace, tmp_path)


def refusal(sandbox: Cluster, kind: str, name: str, namespace: str, reason: str) -> dict[str, Any]:
    return wait_for(lambda: (c := ready_condition(sandbox, kind, name, namespace)).get("reason") == reason and c,
                    timeout=60, what=f"{kind} {name} refused ({reason})")


def test_each_gated_setting_is_refused_until_the_namespace_opts_in(
    sandbox: Cluster, namespace: str, tenant: Tenant, running_operator: Operator
) -> None:
    tenant.apply(cluster(), *(td for td, _, _ in ATTACKS.values()), *(task(name, name) for name in ATTACKS))
    for name, (_, messages, _) in ATTACKS.items():
        refused = refusal(sandbox, "taskdefinitions.ecs.operator.dev", name, namespace, "RefusedByWorkloadPolicy")
        message = refused["message"]  # each refusal, in field order, joined by "; "
        assert message.startswith(messages[0]), message
        assert [message.index(m) for m in messages] == sorted(message.index(m) for m in messages)
        assert message.count(f"; label the namespace {OPT_IN_LABEL}=true or allow ") == len(messages), message
        assert message.count("chart value workloadPolicy.allowedFeatures") == len(messages), message
        assert wait_for(lambda: warnings(sandbox, namespace, name, "RefusedByWorkloadPolicy"), timeout=30,
                        what=f"the Warning Event of {name}") == [refused["message"]]
    assert sandbox.kubectl_json("get", "controllerrevisions", "-n", namespace, "-l", REVISION_KIND_LABEL)["items"] == []
    assert pods(sandbox, namespace) == []

    sandbox.kubectl("label", "namespace", namespace, f"{OPT_IN_LABEL}=true")  # the namespace administrator's decision
    for name, (_, _, check) in ATTACKS.items():
        wait_for(lambda: get(sandbox, "tasks.ecs.operator.dev", name, namespace).get("status", {}).get("lastStatus") == "RUNNING",
                 timeout=120, what=f"task {name} RUNNING once the namespace opted in")
        [pod] = pods(sandbox, namespace, name)
        assert check(pod), pod


def test_root_is_refused_where_the_namespace_asks_for_non_root(
    sandbox: Cluster, namespace: str, tenant: Tenant, running_operator: Operator
) -> None:
    sandbox.kubectl("label", "namespace", namespace, f"{NON_ROOT_LABEL}=true", f"{OPT_IN_LABEL}=true")
    tenant.apply(cluster(), task_definition("root", {**TOOL, "user": "0"}), task("root", "root"))
    refused = refusal(sandbox, "taskdefinitions.ecs.operator.dev", "root", namespace, "RefusedByWorkloadPolicy")
    assert refused["message"] == (f"containerDefinitions[0].user: running as root (user '0') is refused: the namespace is "
                                  f"labelled {NON_ROOT_LABEL}=true; set a non-zero numeric user, or remove the label")
    assert pods(sandbox, namespace) == []

    sandbox.kubectl("label", "namespace", namespace, f"{NON_ROOT_LABEL}-")
    wait_for(lambda: get(sandbox, "tasks.ecs.operator.dev", "root", namespace).get("status", {}).get("lastStatus") == "RUNNING",
             timeout=120, what="the task RUNNING once the namespace no longer asks for non-root")
    [pod] = pods(sandbox, namespace, "root")
    assert pod["spec"]["containers"][0]["securityContext"]["runAsUser"] == 0


WEB = task_definition("web", container("web", memory=64, portMappings=[{"containerPort": 80}]))
LOAD_BALANCERS = [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef",
                   "containerName": "web", "containerPort": 80}]


def test_a_service_reachable_from_outside_is_refused_until_the_namespace_opts_in(
    sandbox: Cluster, namespace: str, tenant: Tenant, running_operator: Operator
) -> None:
    tenant.apply(cluster(), WEB, service("web", "web", desired=1, loadBalancers=LOAD_BALANCERS,
                                         kubernetes={"loadBalancerServiceType": "NodePort"}))
    refused = refusal(sandbox, "services.ecs.operator.dev", "web", namespace, "InvalidParameterException")
    assert refused["message"].startswith(
        "kubernetes.loadBalancerServiceType: a Kubernetes Service of type NodePort (reachable from outside the cluster) "
        f"is refused by the workload policy (feature externalServices); label the namespace {OPT_IN_LABEL}=true")
    assert wait_for(lambda: warnings(sandbox, namespace, "web", "InvalidParameterException"), timeout=30,
                    what="the Warning Event") == [refused["message"]]
    for kind in ("services", "deployments", "pods"):
        assert sandbox.kubectl_json("get", kind, "-n", namespace)["items"] == [], kind

    sandbox.kubectl("label", "namespace", namespace, f"{OPT_IN_LABEL}=true")
    exposed = wait_for(lambda: get(sandbox, "service", "web", namespace), timeout=90, what="the Kubernetes Service web")
    assert exposed["spec"]["type"] == "NodePort"
    wait_for(lambda: get(sandbox, "services.ecs.operator.dev", "web", namespace).get("status", {}).get("runningCount") == 1,
             timeout=90, what="the service's task running")


def test_counts_beyond_ecs_quotas_are_refused_at_admission(sandbox: Cluster, namespace: str, tenant: Tenant) -> None:
    huge = tenant.apply(service("huge", "web", desired=100000), check=False)
    assert huge.returncode != 0
    assert "spec.desiredCount: Invalid value: 100000" in huge.stderr and "less than or equal to 5000" in huge.stderr
    many = tenant.apply(task("many", "web", count=11), check=False)
    assert many.returncode != 0
    assert "spec.count: Invalid value: 11" in many.stderr and "less than or equal to 10" in many.stderr
    for kind in ("services.ecs.operator.dev", "tasks.ecs.operator.dev"):
        assert sandbox.kubectl_json("get", kind, "-n", namespace)["items"] == [], kind

    # the scale subresource (kubectl scale) is held to the same bound
    tenant.apply(service("small", "web", desired=0))
    scaled = tenant.kubectl("scale", "services.ecs.operator.dev/small", "--replicas=100000", check=False)
    assert scaled.returncode != 0 and "less than or equal to 5000" in scaled.stderr
    assert get(sandbox, "services.ecs.operator.dev", "small", namespace)["spec"]["desiredCount"] == 0


def test_the_operators_task_limit_per_service(sandbox: Cluster, namespace: str, tenant: Tenant, running_operator: Operator) -> None:
    running_operator.stop()
    running_operator.start("--max-service-tasks", "2")
    try:
        tenant.apply(cluster(), WEB, service("web", "web", desired=3))
        refused = refusal(sandbox, "services.ecs.operator.dev", "web", namespace, "InvalidParameterException")
        assert refused["message"].startswith("desiredCount: 3 tasks are more than this operator allows per service (2)")
        assert "chart value ecs.maxServiceTasks" in refused["message"]
        assert sandbox.kubectl_json("get", "deployments", "-n", namespace)["items"] == []
        tenant.kubectl("patch", "services.ecs.operator.dev", "web", "--type", "merge", "-p", '{"spec": {"desiredCount": 2}}')
        wait_for(lambda: get(sandbox, "services.ecs.operator.dev", "web", namespace).get("status", {}).get("runningCount") == 2,
                 timeout=120, what="the service's 2 tasks running within the limit")
    finally:
        running_operator.stop()
        running_operator.start("--max-service-tasks", "5000")
