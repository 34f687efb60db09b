"""The sandbox's Gateway API CRDs (sandbox/gateway_api.py): only the CustomResourceDefinitions of the module's
standard channel are taken."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_operator.sandbox.gateway_api import STANDARD_CRDS, standard_crds
from ecs_operator.sandbox.launcher import SandboxError


def test_only_the_standard_channels_crds_are_installed(tmp_path: Path) -> None:
    standard = tmp_path / STANDARD_CRDS
    standard.mkdir(parents=True)
    (standard / "gateway.networking.k8s.io_httproutes.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
        "  name: httproutes.gateway.networking.k8s.io\n")
    (standard / "gateway.networking.k8s.io_vap_safeupgrades.yaml").write_text(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: safe\n---\n"
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: safe\n")
    assert [c["metadata"]["name"] for c in standard_crds(tmp_path)] == ["httproutes.gateway.networking.k8s.io"]


def test_a_module_without_crds_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no CustomResourceDefinition"):
        standard_crds(tmp_path)
