"""The copies the indexes keep: one per object version, without managedFields, never the live body."""

from __future__ import annotations

from ecs_operator.runtime.snapshots import Snapshots


def pod(version: str, phase: str = "Running") -> dict:
    return {"kind": "Pod", "metadata": {"name": "p", "uid": "u1", "resourceVersion": version,
                                        "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
                                        "labels": {"a": "b"}},
            "status": {"phase": phase}}


def test_every_index_of_one_version_gets_the_same_copy_without_managed_fields() -> None:
    snapshots, body = Snapshots(), pod("7")
    first, second = snapshots.of(body), snapshots.of(body)
    assert first is second
    assert "managedFields" not in first["metadata"] and first["metadata"]["labels"] == {"a": "b"}
    body["status"]["phase"] = "Failed"  # kopf's live body changes: the copy does not
    body["metadata"]["labels"]["a"] = "c"
    assert first["status"]["phase"] == "Running" and first["metadata"]["labels"] == {"a": "b"}
    assert "managedFields" in body["metadata"]  # the body itself is left as it was


def test_a_new_version_is_a_new_copy_and_old_versions_are_forgotten() -> None:
    snapshots = Snapshots(recent=2)
    one = snapshots.of(pod("1"))
    assert snapshots.of(pod("2", "Succeeded"))["status"]["phase"] == "Succeeded"
    snapshots.of(pod("3"))
    assert snapshots.of(pod("1")) is not one  # beyond the two remembered: copied again


def test_the_copies_of_different_objects_hold_each_string_once() -> None:
    """Two Pods decoded separately (as the watch does) share their keys and equal values once copied."""
    import json

    snapshots = Snapshots()
    first = snapshots.of(json.loads(json.dumps(pod("1"))))
    other = json.loads(json.dumps(pod("2") | {"status": {"phase": "Running", "conditions": [{"type": "Ready"}]}}))
    other["metadata"]["uid"] = "u2"
    second = snapshots.of(other)
    assert second is not first and second["metadata"]["uid"] == "u2"
    assert [k for k in first["metadata"] if k == "labels"][0] is [k for k in second["metadata"] if k == "labels"][0]
    assert first["status"]["phase"] is second["status"]["phase"]
    assert second["status"]["conditions"] == [{"type": "Ready"}]
    assert second["status"]["conditions"] is not other["status"]["conditions"]


def test_a_pods_copy_leaves_out_what_no_reader_uses_and_keeps_the_rest() -> None:
    body = pod("1") | {"spec": {
        "nodeName": "n1", "schedulerName": "default-scheduler", "affinity": {"nodeAffinity": {}},
        "volumes": [{"name": "kube-api-access-x", "projected": {}}], "tolerations": [{"key": "k", "operator": "Exists"}],
        "containers": [{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "16m"}}, "ports": [],
                        "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run"}], "imagePullPolicy": "Always"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}], "qosClass": "Burstable",
                   "conditions": [{"type": "Ready", "status": "True"}]}}
    copy = Snapshots().of(body)
    assert copy["spec"] == {"nodeName": "n1", "schedulerName": "default-scheduler", "affinity": {"nodeAffinity": {}},
                            "containers": [{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "16m"}},
                                            "ports": []}]}
    assert copy["status"] == {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
    assert body["spec"]["volumes"] and body["spec"]["containers"][0]["volumeMounts"]  # the body is left as it was
    node = {"kind": "Node", "metadata": {"name": "n1", "uid": "n", "resourceVersion": "1"}, "spec": {"volumes": []}}
    assert Snapshots().of(node)["spec"] == {"volumes": []}  # only Pods are trimmed
