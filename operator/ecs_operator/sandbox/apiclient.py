"""A minimal Kubernetes API client for the launcher's readiness polls and node creation.

The launcher polls many times a second while the control plane starts; a few lines of
`http.client` over a reused TLS context cost nothing to import, unlike the full Kubernetes client.
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

from ecs_operator.sandbox.pki import Pki


class ApiError(Exception):
    """A non-2xx answer (status 0: no answer at all)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


class ApiClient:
    """HTTPS to 127.0.0.1:`port` as one of the sandbox's certificate users."""

    def __init__(self, port: int, pki: Pki, client: str = "admin", timeout: float = 5.0) -> None:
        self.port = port
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=str(pki.ca_cert))
        self.context.load_cert_chain(str(pki.cert(client)), str(pki.key(client)))

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        """The decoded JSON answer (or the text, for endpoints such as /readyz)."""
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=self.timeout)
        try:
            payload = None if body is None else json.dumps(body)
            headers = {"Content-Type": content_type} if payload else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as error:
            raise ApiError(0, str(error) or type(error).__name__) from error
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise ApiError(response.status, data.strip()[:500])
        if response.getheader("Content-Type", "").startswith("application/json"):
            return json.loads(data)
        return data

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def create(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)

    def apply(self, path: str, body: dict[str, Any]) -> Any:
        """Server-side apply (forced) of the object at `path`: creates it or brings it up to date."""
        return self.request("PATCH", f"{path}?fieldManager=ecs-operator-sandbox&force=true", body,
                            content_type="application/apply-patch+yaml")
