"""The Kubernetes floor: the operator refuses to start on an API server older than 1.35."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ecs_operator.kube_version import MINIMUM, server_version, version_problem


@pytest.mark.parametrize("info, version", [
    ({"major": "1", "minor": "35", "gitVersion": "v1.35.0"}, (1, 35)),
    ({"major": "1", "minor": "35+", "gitVersion": "v1.35.2-eks-4ad3f8e"}, (1, 35)),  # managed offerings
    ({"major": "", "minor": "", "gitVersion": "v1.36.1-gke.100"}, (1, 36)),
    ({"major": "", "minor": "", "gitVersion": "v0.0.0-master+$Format:%H$"}, (0, 0)),
    ({"gitVersion": "unknown"}, None),
])
def test_the_version_is_read_from_major_and_minor_or_git_version(info: dict[str, str], version: tuple[int, int] | None) -> None:
    assert server_version(info) == version


@pytest.mark.parametrize("info", [
    {"major": "1", "minor": "35", "gitVersion": "v1.35.0"},
    {"major": "1", "minor": "37", "gitVersion": "v1.37.2"},
    {"major": "2", "minor": "0", "gitVersion": "v2.0.0"},
])
def test_135_and_newer_are_served(info: dict[str, str]) -> None:
    assert version_problem(info) is None


def test_an_older_api_server_is_refused_in_one_line_naming_both_versions_and_why() -> None:
    problem = version_problem({"major": "1", "minor": "34+", "gitVersion": "v1.34.1-eks-1"}) or ""
    assert problem == ("the API server is Kubernetes v1.34.1-eks-1; the operator needs Kubernetes 1.35 or newer "
                       "(container restart rules on regular containers (1.35) and Pod-level resources (1.34))")
    assert "\n" not in problem


def test_a_version_that_names_no_release_is_refused() -> None:
    assert "reports no Kubernetes release ('unknown')" in (version_problem({"gitVersion": "unknown"}) or "")


def test_the_charts_kube_version_is_the_operators_floor() -> None:
    chart = yaml.safe_load((Path(__file__).parents[2] / "charts" / "ecs-operator" / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={MINIMUM[0]}.{MINIMUM[1]}.0-0"
