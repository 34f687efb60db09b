"""AWS Signature Version 4, verified by recomputing the signature with botocore's own signer.

Access keys live in a Kubernetes Secret (see keys.py); each is bound to one namespace, the
"account" whose Clusters, Services and Tasks the caller sees.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .errors import incomplete_signature, invalid_signature, missing_authentication

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "ecs"
MAX_SKEW = timedelta(minutes=5)
"""AWS refuses a request signed more than 5 minutes from its own clock ("Signature expired")."""
AMZ_DATE = "%Y%m%dT%H%M%SZ"
_CREDENTIAL = re.compile(r"^(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request$")


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str
    namespace: str
    """The namespace this key may act in: its Cluster resources are the account's ECS clusters."""
    capacity_providers: bool = False
    """May create, update and delete (its own) CapacityProviders: cluster-scoped resources a namespace's
    own Kubernetes rights never reach, so only a key an administrator marks so may."""


@dataclass(frozen=True)
class SignedRequest:
    """What the Authorization header claims: who signed, for which scope, which headers, the signature."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(headers: Mapping[str, str]) -> SignedRequest:
    """The Authorization header's parts; no header at all is AWS's MissingAuthenticationTokenException."""
    header = headers.get("Authorization")
    if not header:
        raise missing_authentication()
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise incomplete_signature(f"Unsupported authorization algorithm {algorithm!r}: only {ALGORITHM} is accepted.")
    parts = dict(p.strip().partition("=")[::2] for p in rest.split(","))
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not parts.get(k)]
    if missing:
        raise incomplete_signature(f"Authorization header requires {', '.join(missing)}. Authorization={header}")
    credential = _CREDENTIAL.match(parts["Credential"])
    if credential is None:
        raise incomplete_signature(f"Credential should be scoped to a valid region and service: {parts['Credential']!r}")
    return SignedRequest(
        access_key_id=credential["key"], date=credential["date"], region=credential["region"], service=credential["service"],
        signed_headers=tuple(h.strip().lower() for h in parts["SignedHeaders"].split(";") if h.strip()),
        signature=parts["Signature"].strip(),
    )


def verify(signed: SignedRequest, key: AccessKey, method: str, path: str, headers: Mapping[str, str], body: bytes,
           now: datetime | None = None) -> None:
    """Raises InvalidSignatureException unless `signed` is `key`'s signature of exactly this request,
    made within 5 minutes of `now`."""
    if signed.service != SERVICE:
        raise invalid_signature(f"Credential should be scoped to correct service: '{SERVICE}'.")
    for required in ("host", "x-amz-date"):
        if required not in signed.signed_headers:
            raise invalid_signature(f"The request must sign the {required} header.")
    amz_date = headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise incomplete_signature(f"X-Amz-Date {amz_date!r} is not a date of the form YYYYMMDDTHHMMSSZ.") from None
    now = now or datetime.now(UTC)
    if abs(now - signed_at) > MAX_SKEW:
        raise invalid_signature(f"Signature expired: {amz_date} is now earlier than "
                                f"{(now - MAX_SKEW).strftime(AMZ_DATE)} ({now.strftime(AMZ_DATE)} - 5 min.)"
                                if signed_at < now else
                                f"Signature not yet current: {amz_date} is still later than "
                                f"{(now + MAX_SKEW).strftime(AMZ_DATE)} ({now.strftime(AMZ_DATE)} + 5 min.)")
    if signed.date != amz_date[:8]:
        raise invalid_signature("The credential's date does not match X-Amz-Date.")
    claimed_hash = headers.get("X-Amz-Content-SHA256")
    if claimed_hash is not None and claimed_hash != hashlib.sha256(body).hexdigest():
        raise invalid_signature("X-Amz-Content-SHA256 is not the SHA-256 of the body (unsigned payloads are refused).")
    if not hmac.compare_digest(expected_signature(signed, key, method, path, headers, body), signed.signature):
        raise invalid_signature("The request signature we calculated does not match the signature you provided. "
                                "Check your AWS Secret Access Key and signing method.")


def expected_signature(signed: SignedRequest, key: AccessKey, method: str, path: str, headers: Mapping[str, str],
                       body: bytes) -> str:
    """botocore's signature of the request rebuilt from the headers the client signed (http:// so the
    payload's hash is always part of it)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    request = AWSRequest(method=method, url=f"http://{lowered.get('host', '')}{path}",
                         headers={h: lowered.get(h, "") for h in signed.signed_headers}, data=body)
    request.context["timestamp"] = headers.get("X-Amz-Date", "")
    signer = SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), signed.service, signed.region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
