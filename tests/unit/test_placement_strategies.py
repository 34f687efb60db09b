"""placementStrategy and distinctInstance -> pod-spec fragments with fidelity verdicts; merging fragments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ecs_operator import labels
from ecs_operator.models.common import PlacementStrategy
from ecs_operator.placement.affinity import member_of_affinity
from ecs_operator.placement.podspec import Fidelity, PlacementFragment, merge
from ecs_operator.placement.query import parse
from ecs_operator.placement.scheduler_profiles import profiles
from ecs_operator.placement.strategies import distinct_instance, placement_strategies

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
WEB = {"matchLabels": {labels.GROUP: "service.web"}}


def spread_on(key: str) -> dict[str, object]:
    return {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": WEB}


def strategy(type_: str, field: str | None = None) -> PlacementStrategy:
    return PlacementStrategy.model_validate({"type": type_, "field": field})


def test_distinct_instance_is_required_anti_affinity_per_node() -> None:
    fragment = distinct_instance("service:web")
    assert fragment.pod_spec == {
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": WEB, "topologyKey": HOST}]
            }
        }
    }
    assert fragment.fidelity == (
        Fidelity(
            "distinctInstance",
            "exact",
            "required pod anti-affinity on service:web's tasks per node (kubernetes.io/hostname)",
        ),
    )


@pytest.mark.parametrize(
    ("field", "key"),
    [
        ("attribute:ecs.availability-zone", ZONE),
        ("instanceId", HOST),
        ("host", HOST),
        ("attribute:ecs.instance-type", "node.kubernetes.io/instance-type"),
        ("attribute:rack", "attributes.ecs.operator.dev/rack"),
    ],
)
def test_spread_is_a_topology_spread_constraint(field: str, key: str) -> None:
    fragment = placement_strategies([strategy("spread", field)], "service:web", service=True)
    assert fragment.pod_spec == {"topologySpreadConstraints": [spread_on(key)]}
    (verdict,) = fragment.fidelity
    assert (verdict.item, verdict.verdict) == (f"spread({field})", "approximated")
    assert verdict.note.startswith(f"topologySpreadConstraints on {key} (maxSkew 1, ScheduleAnyway): best effort")


def test_spread_on_one_topology_twice_yields_one_constraint() -> None:
    fragment = placement_strategies(
        [strategy("spread", "instanceId"), strategy("spread", "host")], "service:web", service=True
    )
    assert fragment.pod_spec == {"topologySpreadConstraints": [spread_on(HOST)]}
    assert fragment.fidelity[1].note == f"repeats an earlier spread on {HOST}: nothing to add"


@pytest.mark.parametrize("field", ["cpu", None, "attribute:bad name"])
def test_spread_needs_a_bucket_kubernetes_can_label(field: str | None) -> None:
    fragment = placement_strategies([strategy("spread", field)], "service:web", service=True)
    assert fragment.pod_spec == {}
    assert fragment.fidelity[0].verdict == "unsupported"
    assert fragment.fidelity[0].note.startswith("spread needs instanceId, host or attribute:<name>")


def test_binpack_is_preferred_affinity_to_the_group() -> None:
    fragment = placement_strategies(
        [strategy("binpack", "memory"), strategy("binpack", "cpu")], "service:web", service=True
    )
    assert fragment.pod_spec == {
        "affinity": {
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {"labelSelector": WEB, "topologyKey": HOST}}
                ]
            }
        }
    }
    assert [f.item for f in fragment.fidelity] == ["binpack(memory)", "binpack(cpu)"]
    assert {f.verdict for f in fragment.fidelity} == {"approximated"}
    assert "least remaining memory" in fragment.fidelity[0].note
    assert "--binpack-scheduler-profiles" in fragment.fidelity[0].note


def test_binpack_names_the_scheduler_profile_of_its_field_where_the_cluster_has_them() -> None:
    fragment = placement_strategies([strategy("spread", "attribute:ecs.availability-zone"), strategy("binpack", "memory"),
                                     strategy("binpack", "cpu")], "service:web", service=True, binpack_profiles=True)
    assert fragment.pod_spec == {"topologySpreadConstraints": [spread_on(ZONE)], "schedulerName": "ecs-binpack-memory"}
    assert [(f.item, f.verdict) for f in fragment.fidelity[1:]] == [("binpack(memory)", "approximated"), ("binpack(cpu)", "approximated")]
    assert fragment.fidelity[1].note.startswith("schedulerName ecs-binpack-memory: the node whose memory is most allocated")
    assert fragment.fidelity[2].note == "a second binpack: the scheduler packs one resource, ecs-binpack-memory decides"


def test_the_binpack_profiles_score_the_field_most_allocated_and_let_spread_decide_first() -> None:
    (cpu, memory) = profiles()
    assert (cpu["schedulerName"], memory["schedulerName"]) == ("ecs-binpack-cpu", "ecs-binpack-memory")
    fit = next(c["args"] for c in memory["pluginConfig"] if c["name"] == "NodeResourcesFit")
    assert fit == {"scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "memory", "weight": 1}]}}
    weights = {p["name"]: p["weight"] for p in memory["plugins"]["score"]["enabled"]}
    assert weights["PodTopologySpread"] > 10 * weights["NodeResourcesFit"]
    assert {"name": "NodeResourcesBalancedAllocation"} in memory["plugins"]["score"]["disabled"]


def test_random_adds_nothing() -> None:
    fragment = placement_strategies([strategy("random")], "family:nginx", service=False)
    assert fragment.pod_spec == {}
    assert fragment.fidelity == (
        Fidelity(
            "random",
            "approximated",
            "the default scheduler scores nodes (favouring the least allocated); it does not pick at random",
        ),
    )


def test_defaults_services_spread_by_zone_then_instance_tasks_random() -> None:
    service = placement_strategies(None, "service:web", service=True)
    assert service.pod_spec == {"topologySpreadConstraints": [spread_on(ZONE), spread_on(HOST)]}
    assert [f.item for f in service.fidelity] == [
        "spread(attribute:ecs.availability-zone) (default)",
        "spread(instanceId) (default)",
    ]
    task = placement_strategies([], "family:nginx", service=False)
    assert task.pod_spec == {}
    assert [(f.item, f.verdict) for f in task.fidelity] == [("random (default)", "approximated")]


def test_mixed_strategies_in_order() -> None:
    fragment = placement_strategies(
        [strategy("spread", "attribute:ecs.availability-zone"), strategy("binpack", "cpu")], "service:web", service=True
    )
    assert fragment.pod_spec["topologySpreadConstraints"] == [spread_on(ZONE)]
    assert "podAffinity" in fragment.pod_spec["affinity"]
    assert [f.item for f in fragment.fidelity] == ["spread(attribute:ecs.availability-zone)", "binpack(cpu)"]


def test_merge_combines_everything_a_service_needs() -> None:
    member_of = member_of_affinity(parse("attribute:ecs.instance-type == m5.large and task:group != service:db"))
    merged = merge(
        member_of.fragment("memberOf"),
        distinct_instance("service:web"),
        placement_strategies(None, "service:web", service=True),
    )
    affinity = merged.pod_spec["affinity"]
    assert affinity["nodeAffinity"] == member_of.node_affinity
    assert [
        t["labelSelector"] for t in affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    ] == [
        {"matchExpressions": [{"key": labels.GROUP, "operator": "In", "values": ["service.db"]}]},
        WEB,
    ]
    assert merged.pod_spec["topologySpreadConstraints"] == [spread_on(ZONE), spread_on(HOST)]
    assert [f.verdict for f in merged.fidelity] == ["exact", "exact", "approximated", "approximated"]


def test_merge_does_not_alias_its_inputs_and_refuses_two_node_affinities() -> None:
    one = distinct_instance("service:web")
    merged = merge(one, distinct_instance("service:api"))
    assert len(one.pod_spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]) == 1
    assert len(merged.pod_spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]) == 2
    node = member_of_affinity(parse("attribute:a exists")).fragment()
    with pytest.raises(ValueError, match="both set node affinity"):
        merge(node, node)
    assert merge() == PlacementFragment({}, ())


def test_the_readme_shows_the_profiles_the_sandbox_runs() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### binpack placement"):]
    shown = yaml.safe_load(section[section.index("```yaml") + 7:section.index("```\n")])
    assert shown["profiles"] == [{"schedulerName": "default-scheduler"}, *profiles()]
