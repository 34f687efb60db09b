"""ECS names as Kubernetes names, and the naming conventions for Secrets and ConfigMaps."""

from __future__ import annotations

import hashlib
import re

_INVALID = re.compile(r"[^a-z0-9-]+")


def dns_label(name: str, max_length: int = 63) -> str:
    """A DNS-1123 label (container, volume, port-free names): lowercase, '-' for the rest; long names hashed."""
    label = _INVALID.sub("-", name.lower()).strip("-") or "x"
    if len(label) <= max_length and label == name:
        return label
    if len(label) > max_length:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        label = label[: max_length - 9].rstrip("-") + "-" + digest
    return label


def dns_subdomain(name: str) -> str:
    """A DNS-1123 subdomain (object names): dots allowed, 253 characters."""
    parts = [dns_label(p) for p in name.split(".") if p]
    return ".".join(parts)[:253].strip(".-") or "x"


_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def port_name(name: str) -> str | None:
    """ECS port mapping names (64 chars) as Kubernetes port names (IANA_SVC_NAME, 15 chars), if they fit."""
    candidate = name.replace("_", "-").lower()
    if len(candidate) <= 15 and _PORT_NAME.match(candidate) and "--" not in candidate and re.search("[a-z]", candidate):
        return candidate
    return None


def secret_ref(value_from: str) -> tuple[str, str]:
    """The Kubernetes Secret (name, key) that stands for an ECS secret's valueFrom.

    Convention (docs/conversion.md): Secrets Manager `arn:...:secret:NAME[:json-key[:stage[:version]]]`
    -> Secret `NAME` (as a DNS name), key json-key or `value`; SSM `arn:...:parameter/a/b` or `/a/b`
    -> Secret `a-b`, key `value`.
    """
    if value_from.startswith("arn:"):
        parts = value_from.split(":")
        service = parts[2] if len(parts) > 2 else ""
        resource = ":".join(parts[5:])
        if service == "secretsmanager" and resource.startswith("secret:"):
            fields = resource.split(":")
            name = fields[1]
            key = fields[2] if len(fields) > 2 and fields[2] else "value"
            return dns_subdomain(name), key
        if service == "ssm" and resource.startswith("parameter"):
            return dns_subdomain(resource[len("parameter"):].strip("/").replace("/", "-")), "value"
        return dns_subdomain(resource.replace("/", "-").replace(":", "-")), "value"
    return dns_subdomain(value_from.strip("/").replace("/", "-")), "value"


def environment_file_configmap(value: str) -> str:
    """The ConfigMap that stands for an S3 environment file: `arn:aws:s3:::bucket/path/app.env` -> `bucket-path-app-env`."""
    resource = value.split(":::", 1)[-1]
    return dns_subdomain(resource.replace("/", "-").replace(".", "-"))
