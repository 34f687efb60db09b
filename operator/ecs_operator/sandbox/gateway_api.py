"""The Gateway API's standard CRDs (HTTPRoute, Gateway, GatewayClass, ReferenceGrant, ...) for the sandbox
(`sandbox up --gateway-api`): so that the HTTPRoutes the operator writes for BLUE_GREEN, LINEAR and CANARY
deployments with a blue/green load balancer (docs/conversion.md §Load balancers and Gateway API) are admitted
and validated by the API server as on a cluster with a Gateway implementation.

The CRDs come from the Go module sigs.k8s.io/gateway-api at GATEWAY_API_VERSION, fetched by the Go toolchain
through the module proxy into its module cache (`go mod download`, which checks it against go.sum's database),
never a copy in this repository: the machine's only source of releases is the Go proxy. `sandbox build` (`make
controlplane`) fetches it with the control plane's modules; the tests and `up --no-build` read the cache only.
Only the CustomResourceDefinitions of config/crd/standard/ are installed (the ValidatingAdmissionPolicy there
guards upgrades to the experimental channel, which a sandbox never has).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ecs_operator.sandbox.build import go_environment
from ecs_operator.sandbox.launcher import SandboxError

GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION = "v1.6.3"
STANDARD_CRDS = Path("config/crd/standard")


def module_dir(offline: bool = False, timeout: float = 300) -> Path:
    """The module's directory in the Go module cache (downloaded through the Go proxy the first time; `offline`:
    never, the cache must have it: `ecs-operator sandbox build` fetches it with the control plane's modules)."""
    if not shutil.which("go"):
        raise SandboxError("`go` not found on PATH: the Gateway API CRDs come from the Go module "
                           f"{GATEWAY_API_MODULE}@{GATEWAY_API_VERSION} (install Go)")
    result = subprocess.run(["go", "mod", "download", "-json", f"{GATEWAY_API_MODULE}@{GATEWAY_API_VERSION}"],
                            capture_output=True, text=True, timeout=timeout, cwd="/",
                            env={**go_environment(), **({"GOPROXY": "off"} if offline else {})})
    try:
        info = json.loads(result.stdout or "{}")
    except ValueError:
        info = {}
    if result.returncode != 0 or not info.get("Dir"):
        hint = " (not in the Go module cache: run `ecs-operator sandbox build` or `make controlplane`)" if offline else ""
        raise SandboxError(f"`go mod download {GATEWAY_API_MODULE}@{GATEWAY_API_VERSION}` failed{hint}: "
                           f"{info.get('Error') or result.stderr.strip()}")
    return Path(info["Dir"])


def standard_crds(directory: Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of the module's standard channel, in file order."""
    crds = []
    for path in sorted((directory / STANDARD_CRDS).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    if not crds:
        raise SandboxError(f"no CustomResourceDefinition under {directory / STANDARD_CRDS}")
    return crds
