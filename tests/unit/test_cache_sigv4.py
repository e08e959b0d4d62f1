"""The DynamoDB tier signs its own requests: they must be byte-for-byte what botocore would send."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from functions.cache.sigv4 import Credentials, Signer

BODY = b'{"RequestItems":{"preheat-cache":{"Keys":[{"key":{"S":"preheat:abc:def"}}]}}}'
WHEN = dt.datetime(2026, 11, 22, 13, 45, 7, tzinfo=dt.UTC)


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////token+with/odd=chars"])
@pytest.mark.parametrize("host", ["dynamodb.eu-west-1.amazonaws.com", "127.0.0.1:54321"])
def test_signature_matches_botocore(token: str | None, host: str) -> None:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    headers = {
        "Host": host,
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.BatchGetItem",
    }
    ours = Signer("eu-west-1", "dynamodb").sign("POST", "/", headers, BODY, creds, WHEN)

    request = AWSRequest(method="POST", url=f"https://{host}/", data=BODY, headers=dict(headers))
    request.context["timestamp"] = WHEN.strftime("%Y%m%dT%H%M%SZ")
    auth = SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key, token), "dynamodb", "eu-west-1")
    # add_auth would read the clock; the same steps with the timestamp fixed:
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    if token:
        request.headers["X-Amz-Security-Token"] = token
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)

    assert ours["Authorization"].endswith(f"Signature={signature}")
    assert f"SignedHeaders={auth.signed_headers(auth.headers_to_sign(request))}," in ours["Authorization"]
    assert ours["X-Amz-Date"] == "20261122T134507Z"
    assert ours.get("X-Amz-Security-Token") == token


def test_the_signing_key_is_cached_per_day_and_secret() -> None:
    signer = Signer("us-east-1", "dynamodb")
    a = signer.sign("POST", "/", {"Host": "h"}, b"", Credentials("A", "S1"), WHEN)
    b = signer.sign("POST", "/", {"Host": "h"}, b"", Credentials("A", "S2"), WHEN)
    c = signer.sign("POST", "/", {"Host": "h"}, b"", Credentials("A", "S1"), WHEN + dt.timedelta(days=1))
    assert len({a["Authorization"], b["Authorization"], c["Authorization"]}) == 3
