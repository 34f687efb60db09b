"""ECS's error answers: `{"__type": code, "message": ...}`, which botocore turns into its exception classes."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: ECS's error code (the botocore exception name), a message and the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message}


def client_error(message: str) -> ApiError:
    return ApiError("ClientException", message)


def invalid_parameter(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def cluster_not_found(message: str = "Cluster not found.") -> ApiError:
    return ApiError("ClusterNotFoundException", message)


def service_not_found(message: str = "Service not found.") -> ApiError:
    return ApiError("ServiceNotFoundException", message)


def service_not_active(message: str = "Service was not ACTIVE.") -> ApiError:
    return ApiError("ServiceNotActiveException", message)


def access_denied(message: str) -> ApiError:
    return ApiError("AccessDeniedException", message)


def unsupported(message: str) -> ApiError:
    return ApiError("UnsupportedFeatureException", message)


# Errors of the protocol and of authentication (AWS's own codes and statuses).
def unknown_operation(target: str) -> ApiError:
    return ApiError("UnknownOperationException", f"Unknown operation {target!r}")


def serialization(message: str) -> ApiError:
    return ApiError("SerializationException", message)


def missing_authentication() -> ApiError:
    return ApiError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)


def incomplete_signature(message: str) -> ApiError:
    return ApiError("IncompleteSignatureException", message, 400)


def invalid_signature(message: str) -> ApiError:
    return ApiError("InvalidSignatureException", message, 403)


def unrecognized_client() -> ApiError:
    return ApiError("UnrecognizedClientException", "The security token included in the request is invalid.", 403)


def server_error(message: str) -> ApiError:
    """The Kubernetes API failed (not the caller's fault): botocore retries these."""
    return ApiError("ServerException", message, 500)
