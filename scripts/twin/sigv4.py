"""IAM auth for Function URLs (AuthType AWS_IAM): SigV4 verified by the twin, signed by its clients.

`verify` is the server's side, written from the SigV4 specification rather than from a client, so
that any correct signer passes (botocore's SigV4Auth, requests-aws4auth, the SDKs): the canonical
request (method; the path with dot segments removed, URI-encoded again; the query re-encoded and
sorted; the headers the client signed, values trimmed; the payload's SHA-256 or the
X-Amz-Content-SHA256 it declared), the string to sign with the scope `date/region/lambda/aws4_request`,
and the HMAC chain. The only credentials are the twin's (moto's test credentials, `testing`), as the
twin runs no IAM; an unknown key or session token is refused as AWS refuses one.

Refusals are Lambda's: 403 with x-amzn-ErrorType and a JSON message, before the function runs:
AccessDeniedException for a request with no signature, InvalidSignatureException for a wrong,
tampered or stale one (X-Amz-Date more than 5 minutes off), UnrecognizedClientException for unknown
credentials, IncompleteSignatureException for a malformed Authorization header.

`Signer` is the clients' side: botocore's SigV4Auth, what a Python user of the real thing would use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from scripts.twin.http11 import Request, Response

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "lambda"
ACCESS_KEY = "testing"  # moto's test credentials: what every twin client and function uses
SECRET_KEY = "testing"
SESSION_TOKEN = "testing"  # what the twin gives its functions (AWS_SESSION_TOKEN)
SECRETS = {ACCESS_KEY: SECRET_KEY}
TOKENS = {None, SESSION_TOKEN}
MAX_SKEW = dt.timedelta(minutes=5)
FORBIDDEN = ("Forbidden. For troubleshooting Function URL authorization issues, see: "
             "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html")
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")
_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)


@dataclass(frozen=True)
class Caller:
    """Who signed: the requestContext.authorizer.iam of the event."""

    access_key: str
    account_id: str

    def authorizer(self) -> dict[str, Any]:
        return {"iam": {"accessKey": self.access_key, "accountId": self.account_id, "callerId": self.access_key,
                        "cognitoIdentity": None, "principalOrgId": None,
                        "userArn": f"arn:aws:iam::{self.account_id}:root", "userId": self.account_id}}


def refuse(error_type: str, message: str, key: str = "message") -> Response:
    return Response.json(403, {key: message}, [("x-amzn-errortype", error_type)])


def verify(request: Request, *, region: str, account_id: str, now: dt.datetime | None = None) -> Caller | Response:
    """The caller, or the 403 Lambda answers."""
    now = now or dt.datetime.now(dt.UTC)
    authorization = request.header("authorization")
    if not authorization:
        return refuse("AccessDeniedException", FORBIDDEN, "Message")
    match = _AUTH.match(authorization.strip())
    if match is None:
        return refuse("IncompleteSignatureException", f"Authorization header requires the {ALGORITHM} algorithm")
    fields: dict[str, str] = {}
    for part in match.group(1).split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        return refuse("IncompleteSignatureException",
                      f"Authorization header requires '{missing[0]}' parameter. Authorization={authorization[:120]}")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return refuse("IncompleteSignatureException",
                      "Credential should be of the form ACCESS_KEY/DATE/REGION/SERVICE/aws4_request")
    access_key, date, scope_region, service, _ = scope
    secret = SECRETS.get(access_key)
    token = request.header("x-amz-security-token")
    if secret is None or token not in TOKENS:
        return refuse("UnrecognizedClientException", "The security token included in the request is invalid.")
    amz_date = request.header("x-amz-date") or ""
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return refuse("IncompleteSignatureException",
                      "Authorization header requires existence of a valid 'X-Amz-Date' header (YYYYMMDD'T'HHMMSS'Z')")
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    if signed_at < now - MAX_SKEW:
        return refuse("InvalidSignatureException", f"Signature expired: {amz_date} is now earlier than "
                      f"{(now - MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')} ({stamp} - 5 min.)")
    if signed_at > now + MAX_SKEW:
        return refuse("InvalidSignatureException", f"Signature not yet current: {amz_date} is still later than "
                      f"{(now + MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')} ({stamp} + 5 min.)")
    if date != amz_date[:8]:
        return refuse("InvalidSignatureException", f"Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                      f"version of date from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'.")
    if scope_region != region:
        return refuse("InvalidSignatureException", f"Credential should be scoped to a valid region, not '{scope_region}'.")
    if service != SERVICE:
        return refuse("InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'.")
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed:
        return refuse("InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    declared = request.header("x-amz-content-sha256")
    body_hash = hashlib.sha256(request.body).hexdigest()
    if declared and declared not in (body_hash, "UNSIGNED-PAYLOAD"):
        return refuse("InvalidSignatureException",
                      "The provided 'x-amz-content-sha256' header does not match what was computed.")
    canonical = "\n".join((
        request.method.upper(), canonical_path(request.path), canonical_query(request.query),
        canonical_headers(request.headers, signed), ";".join(signed), declared or body_hash,
    ))
    string_to_sign = "\n".join((ALGORITHM, amz_date, "/".join(scope[1:]),
                                hashlib.sha256(canonical.encode()).hexdigest()))
    key = f"AWS4{secret}".encode()
    for part in (date, scope_region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        return refuse("InvalidSignatureException", MISMATCH)
    return Caller(access_key, account_id)


def canonical_path(path: str) -> str:
    """The path as sent (already percent-encoded), dot segments removed, URI-encoded once more."""
    segments: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if segments:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith(("/.", "/..")) and not normalized.endswith("/"):
        normalized += "/"
    return quote(normalized, safe="/~")


def canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_headers(headers: tuple[tuple[str, str], ...], signed: list[str]) -> str:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(" ".join(value.split()))
    return "".join(f"{name}:{','.join(values.get(name, []))}\n" for name in signed)


class Signer:
    """SigV4 for Function URL requests, with botocore (service `lambda`)."""

    def __init__(self, region: str, credentials: Any = None, *, service: str = SERVICE) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        self._request = AWSRequest  # imported here: a timed request must not pay for it
        self.region = region
        if isinstance(credentials, tuple):
            credentials = Credentials(*credentials)
        self._auth = SigV4Auth(credentials or Credentials(ACCESS_KEY, SECRET_KEY), service, region)

    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, *, at: dt.datetime | None = None
    ) -> dict[str, str]:
        """`headers` with X-Amz-Date, Authorization (and the session token, if any) added, for the
        request to `url` exactly as it will be sent (path and query as they go on the wire); signed
        now, or `at` (stale signatures, for the hostile-input cases)."""
        parts = urlsplit(url)
        # As parameters, not in the URL: botocore then encodes the query canonically, as AWS reads it
        # (a query left in the URL would be signed as written).
        params = [tuple(unquote(x) for x in item.partition("=")[::2]) for item in parts.query.split("&")] \
            if parts.query else []
        bare = f"{parts.scheme}://{parts.netloc}{parts.path}"
        request = self._request(method=method, url=bare, data=body, headers=dict(headers), params=params)
        if at is None:
            self._auth.add_auth(request)
        else:  # add_auth's own steps, at another time (it reads the clock itself)
            auth = self._auth
            request.context["timestamp"] = at.strftime("%Y%m%dT%H%M%SZ")
            auth._modify_request_before_signing(request)
            canonical = auth.canonical_request(request)
            auth._inject_signature_to_request(request, auth.signature(auth.string_to_sign(request, canonical), request))
        return dict(request.headers.items())



class RequestsAuth:
    """`requests` auth (session.auth = RequestsAuth(signer)): signs each prepared request."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def __call__(self, request: Any) -> Any:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        netloc = urlsplit(request.url).netloc
        signed = self.signer.headers(request.method, request.url, {**request.headers, "host": netloc}, body)
        request.headers.update({k: v for k, v in signed.items() if k.lower() != "host"})
        return request
