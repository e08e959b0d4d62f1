"""Where the DynamoDB tier's AWS credentials come from, in the order the SDKs look:

1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN: what Lambda gives every function.
2. The container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI, with
   AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]): ECS, and containers that emulate it.
3. botocore's full provider chain (instance roles, profiles, SSO...), if botocore is installed.

1 costs nothing. 2 and 3 need a network call or ~170 ms of imports, so they only ever run in the
tier's background thread (at init, and again before the credentials expire), never on a request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from functions.cache.sigv4 import Credentials
from functions.cache.wire import Conn, TierError, http_request

ECS_HOST = "169.254.170.2"
REFRESH_MARGIN_SECONDS = 300.0  # refresh this long before expiry (and re-read botocore's this often)


def refresh_at(credentials: Credentials, source: str, now: float) -> float | None:
    """When to fetch new credentials in the background; None for the environment's (Lambda keeps
    them valid for the life of the execution environment)."""
    if credentials.expires_at is not None:
        return max(now + 30.0, credentials.expires_at - REFRESH_MARGIN_SECONDS)
    if source == "botocore":
        return now + REFRESH_MARGIN_SECONDS
    return None


def resolve(env: Mapping[str, str], deadline: float) -> tuple[Credentials, str]:
    """The credentials and the name of the source they came from; TierError if there are none."""
    access, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if access and secret:
        return Credentials(access, secret, env.get("AWS_SESSION_TOKEN") or None), "environment"
    full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
    relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
    if full or relative:
        return _container(full or f"http://{ECS_HOST}{relative}", env, deadline), "container"
    return _botocore(), "botocore"


def _container(uri: str, env: Mapping[str, str], deadline: float) -> Credentials:
    parts = urlsplit(uri)
    headers = {"Host": parts.netloc, "Accept": "application/json"}
    token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "")
    token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", "")
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise TierError(f"cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: {exc}") from None
    if token:
        headers["Authorization"] = token
    tls = parts.scheme == "https"
    conn = Conn.open(parts.hostname or ECS_HOST, parts.port or (443 if tls else 80), deadline, tls=tls)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        status, _, body = http_request(conn, "GET", path, headers, b"", deadline)
    finally:
        conn.close()
    if status != 200:
        raise TierError(f"the container credentials endpoint answered HTTP {status}")
    try:
        data: dict[str, Any] = json.loads(body)
        expiration = data.get("Expiration")
        return Credentials(
            data["AccessKeyId"],
            data["SecretAccessKey"],
            data.get("Token") or None,
            _epoch(expiration) if expiration else None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TierError(f"the container credentials endpoint sent something unexpected: {exc!r}") from None


def _botocore() -> Credentials:
    try:
        import botocore.session  # ~170 ms: only here, in the background, when nothing cheaper worked
    except ImportError:
        raise TierError(
            "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, run with a container "
            "credentials endpoint, or install botocore"
        ) from None
    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise TierError("no AWS credentials found by botocore's provider chain")
    frozen = found.get_frozen_credentials()
    # botocore refreshes temporary credentials itself; the tier re-reads them every few minutes.
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
