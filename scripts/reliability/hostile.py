"""Hand-written hostile requests, each with the answers it may get.

Two targets: a text-embedding model and a tensor model (NaN/Inf, shapes and dtypes need numeric
tensors). Names (model, version, input, its width) are read from the target's metadata, so the same
cases run against tiny test models and the real one. Every case is sent byte for byte
(rawhttp.send) with a timeout; a case passes when its verdict is one it allows, and, when it names
one, the status and error code match.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scripts.reliability import replies
from scripts.reliability.fuzz import Anchors
from scripts.reliability.rawhttp import HttpTarget, RawReply, send

JSON = [("content-type", "application/json")]
LAMBDA_LIMIT = 6 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = tuple(JSON)
    content_length: int | None = None  # a lie when set
    allowed: frozenset[str] = frozenset({replies.REJECTED})
    status: tuple[int, ...] = ()  # empty: any status of an allowed verdict
    code: str | None = None  # the error code a rejection must carry
    early: bool = False  # must be answered before the whole body was sent (limit checked first)
    auth: str = "signed"  # for an AWS_IAM target: how the request is (mis)signed, see AUTH
    platform_code: str | None = None  # the x-amzn-errortype Lambda's front end must answer with


@dataclass(frozen=True)
class CaseOutcome:
    case: str
    target: str
    status: int
    verdict: str
    code: str | None
    ms: float
    sent: int
    size: int
    passed: bool
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class HostileReport:
    outcomes: list[CaseOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseOutcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def server_errors(self) -> int:
        return sum(1 for o in self.outcomes if o.verdict == replies.SERVER_ERROR)

    @property
    def hangs(self) -> int:
        return sum(1 for o in self.outcomes if o.verdict == replies.HANG)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": len(self.outcomes),
            "failed": len(self.failed),
            "server_errors": self.server_errors,
            "hangs": self.hangs,
            "outcomes": [o.as_dict() for o in self.outcomes],
        }


def _nest(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def _huge_allowed(lambda_path: bool) -> frozenset[str]:
    """Who may refuse a body over Lambda's 6 MB: on the Lambda path the twin's Function URL itself, as
    Lambda does (platform 413), or the app; under uvicorn the app, by its own limit."""
    return frozenset({replies.PLATFORM, replies.REJECTED}) if lambda_path else frozenset({replies.REJECTED})


def _size_cases(route: str, max_request_bytes: int, *, lambda_path: bool) -> list[Case]:
    """A body over preheat's own limit, and one over Lambda's 6 MB: the first refused by the app with
    its reason; the second by the twin's Function URL itself, as Lambda does (platform 413), or by
    uvicorn's app by its own limit; both before reading the body."""
    too_big = max_request_bytes + 1024
    huge_allowed = _huge_allowed(lambda_path)
    return [
        Case(f"body over PREHEAT_MAX_REQUEST_BYTES ({too_big} B)", "POST", route,
             b'{"input": "' + b"a" * (too_big - 40) + b'", "model": "x"}', code="payload_too_large", status=(413,)),
        Case("body over Lambda's 6 MB", "POST", route, b'{"input": "' + b"a" * (LAMBDA_LIMIT + 65536) + b'"}',
             allowed=huge_allowed, status=(413,), early=True),
    ]


def embedding_cases(anchors: Anchors, max_request_bytes: int, *, lambda_path: bool) -> list[Case]:
    m = anchors.model
    model = json.dumps(m).encode()
    embed = "/v1/embeddings"
    infer = f"/v2/models/{m}/infer"
    huge_allowed = _huge_allowed(lambda_path)
    many = json.dumps({"input": ["hello world"] * 100_000, "model": m}).encode()
    many_oip = json.dumps(
        {"inputs": [{"name": anchors.inputs[0], "shape": [100_000], "datatype": "BYTES", "data": ["hi"] * 100_000}]}
    ).encode()
    return [
        Case("malformed JSON", "POST", embed, b'{"input": "hello", "model": ', code="invalid_json", status=(400,)),
        Case("JSON array, not an object", "POST", embed, b'["hello"]', status=(400,)),
        Case("JSON scalar", "POST", embed, b'"hello"', status=(400,)),
        Case("JSON null", "POST", "/invocations", b"null", status=(400,)),
        Case("empty body", "POST", embed, b"", status=(400,)),
        Case("invalid UTF-8", "POST", embed, b'{"input": "caf\xe9 \xff\xfe", "model": ' + model + b"}",
             code="invalid_json", status=(400,)),
        Case("invalid UTF-8 in a BYTES tensor", "POST", infer,
             b'{"inputs": [{"name": ' + json.dumps(anchors.inputs[0]).encode()
             + b', "shape": [1], "datatype": "BYTES", "data": ["\xc3\x28"]}]}', status=(400,)),
        Case("lone UTF-16 surrogate", "POST", embed, b'{"input": "\\ud800", "model": ' + model + b"}", status=(400,)),
        Case("control characters in text", "POST", embed,
             json.dumps({"input": "\u0000\u0001\u001b[2J\u202e", "model": m}).encode(),
             allowed=frozenset({replies.OK, replies.REJECTED})),
        Case("text/plain", "POST", embed, b"hello", headers=(("content-type", "text/plain"),),
             code="unsupported_media_type", status=(415,)),
        Case("form-encoded", "POST", embed, b"input=hello&model=x",
             headers=(("content-type", "application/x-www-form-urlencoded"),), status=(415,)),
        Case("multipart", "POST", embed, b"--b\r\n\r\nhello\r\n--b--\r\n",
             headers=(("content-type", "multipart/form-data; boundary=b"),), status=(415,)),
        Case("binary octet-stream", "POST", embed, bytes(range(256)) * 4,
             headers=(("content-type", "application/octet-stream"),), status=(415,)),
        Case("deeply nested arrays (100k)", "POST", embed, _nest(100_000), status=(400,)),
        Case("deeply nested objects (50k)", "POST", "/invocations",
             b'{"a":' * 50_000 + b"1" + b"}" * 50_000, status=(400,)),
        Case("deep nesting inside a valid request", "POST", embed,
             b'{"model": ' + model + b', "input": ' + _nest(10_000, b'"x"') + b"}", status=(400,)),
        # (Under the request limit: a limit of 2 MiB or more lets these reach the inputs check.)
        Case("10^5 inputs", "POST", embed, many, code="too_many_inputs", status=(400,)),
        Case("10^5 inputs (Open Inference Protocol)", "POST", infer, many_oip, code="too_many_inputs", status=(400,)),
        Case("10^5 inputs (SageMaker /invocations)", "POST", "/invocations", many, code="too_many_inputs",
             status=(400,)),
        Case("token-id arrays", "POST", embed, json.dumps({"input": [[1, 2, 3]], "model": m}).encode(),
             code="unsupported_input", status=(400,)),
        Case("empty string input", "POST", embed, json.dumps({"input": [""], "model": m}).encode(), status=(400,)),
        Case("a 1 MB single text", "POST", embed, json.dumps({"input": "word " * 200_000, "model": m}).encode(),
             allowed=frozenset({replies.OK, replies.REJECTED})),
        Case("unknown model", "POST", embed, json.dumps({"input": "hi", "model": "nope"}).encode(),
             code="model_not_found", status=(404,)),
        Case("path traversal in the model name", "GET", "/v2/models/..%2F..%2Fetc%2Fpasswd", status=(404,)),
        Case("percent-encoded invalid UTF-8 in the path", "GET", "/v2/models/%ff%fe", status=(404,)),
        Case("wrong method", "DELETE", embed, status=(405,)),
        Case("unknown route", "GET", "/admin", status=(404,)),
        *_size_cases(embed, max_request_bytes, lambda_path=lambda_path),
        Case("Content-Length that claims 1 GB", "POST", embed, b'{"input": "hi"}', content_length=1 << 30,
             allowed=huge_allowed, status=(413,)),
    ]


# The text-classification task's routes: what each takes as its list of texts (for 10^5 of them).
CLASSIFY, RERANK = "/v1/classify", "/v1/rerank"


def classification_cases(anchors: Anchors, max_request_bytes: int, *, route: str, lambda_path: bool) -> list[Case]:
    """Hostile bodies for /v1/classify (a sequence classifier) or /v1/rerank (a cross-encoder): the
    decoder's, the limits' and the pair shapes' refusals, each a 4xx with its reason."""
    m = anchors.model
    model = json.dumps(m).encode()
    text_field = b'"query"' if route == RERANK else b'"input"'

    def with_text(literal: bytes) -> bytes:  # a raw JSON string literal as the text (bytes json.dumps won't write)
        rest = b', "documents": ["a"]' if route == RERANK else b""
        return b"{" + text_field + b": " + literal + rest + b', "model": ' + model + b"}"

    if route == RERANK:
        def body(**fields: object) -> bytes:
            return json.dumps({"query": "a question", "documents": ["an answer"], "model": m, **fields}).encode()
        many = body(documents=["hello world"] * 100_000)
        shapes = [
            Case("documents missing", "POST", route, json.dumps({"query": "q", "model": m}).encode(), status=(400,)),
            Case("query not a string", "POST", route, body(query=["q"]), status=(400,)),
            Case("a document that is an object without text", "POST", route, body(documents=[{"txt": "a"}]),
                 status=(400,)),
            Case("top_n negative", "POST", route, body(top_n=-1), status=(400,)),
            Case("empty query", "POST", route, body(query=""), status=(400,)),
        ]
    else:
        def body(**fields: object) -> bytes:
            return json.dumps({"input": "hello", "model": m, **fields}).encode()
        many = body(input=["hello world"] * 100_000)
        shapes = [
            Case("a pair of three texts", "POST", route, body(input=[["a", "b", "c"]]), status=(400,)),
            Case("numbers, not texts", "POST", route, body(input=[1, 2]), status=(400,)),
            Case("top_k zero", "POST", route, body(top_k=0), status=(400,)),
            Case("empty string input", "POST", route, body(input=[""]), status=(400,)),
        ]
    return [
        Case("malformed JSON", "POST", route, b'{"model": ' + model, code="invalid_json", status=(400,)),
        Case("JSON array, not an object", "POST", route, b'["hello"]', status=(400,)),
        Case("empty body", "POST", route, b"", status=(400,)),
        Case("invalid UTF-8", "POST", route, with_text(b'"caf\xe9 \xff\xfe"'), code="invalid_json", status=(400,)),
        Case("lone UTF-16 surrogate", "POST", route, with_text(b'"\\ud800"'), status=(400,)),
        Case("text/plain", "POST", route, b"hello", headers=(("content-type", "text/plain"),), status=(415,)),
        Case("deeply nested arrays (100k)", "POST", route, _nest(100_000), status=(400,)),
        Case("10^5 inputs", "POST", route, many, code="too_many_inputs", status=(400,)),
        Case("unknown model", "POST", route, body(model="nope"), status=(404,)),
        Case("wrong method", "DELETE", route, status=(405,)),
        *_size_cases(route, max_request_bytes, lambda_path=lambda_path),
        *shapes,
    ]


def tensor_cases(anchors: Anchors) -> list[Case]:
    m, x, width = anchors.model, anchors.inputs[0], max(anchors.width, 1)
    infer = f"/v2/models/{m}/infer"

    def body(data: Any, shape: Any = None, datatype: str = "FP32", raw: bytes | None = None) -> bytes:
        shape = [1, width] if shape is None else shape
        if raw is not None:
            head = json.dumps({"name": x, "shape": shape, "datatype": datatype}).encode()[:-1]
            return b'{"inputs": [' + head + b', "data": ' + raw + b"}]}"
        return json.dumps({"inputs": [{"name": x, "shape": shape, "datatype": datatype, "data": data}]}).encode()

    ones = [1.0] * width
    rows = 100_000
    return [
        Case("NaN literal", "POST", infer, body(None, raw=b"[NaN" + b", 1" * (width - 1) + b"]"), status=(400,)),
        Case("Infinity literal", "POST", infer, body(None, raw=b"[Infinity" + b", 1" * (width - 1) + b"]"),
             status=(400,)),
        Case("1e999 (overflows float64)", "POST", infer, body(None, raw=b"[1e999" + b", 1" * (width - 1) + b"]"),
             status=(400,)),
        Case("1e39 (overflows float32)", "POST", infer, body(None, raw=b"[1e39" + b", 1" * (width - 1) + b"]"),
             code="invalid_tensor", status=(400,)),
        Case("-1e39", "POST", infer, body(None, raw=b"[-1e39" + b", 1" * (width - 1) + b"]"), code="invalid_tensor",
             status=(400,)),
        Case("shape holds more than data", "POST", infer, body(ones, shape=[2, width]), code="invalid_tensor",
             status=(400,)),
        Case("data holds more than shape", "POST", infer, body([*ones, 1.0]), code="invalid_tensor", status=(400,)),
        Case("wrong width", "POST", infer, body([*ones, 1.0], shape=[1, width + 1]), code="invalid_tensor",
             status=(400,)),
        Case("wrong rank", "POST", infer, body(ones, shape=[width]), code="invalid_tensor", status=(400,)),
        Case("negative dimension", "POST", infer, body(ones, shape=[-1, width]), code="invalid_tensor", status=(400,)),
        Case("2^40 rows claimed", "POST", infer, body(ones, shape=[1 << 40, width]), code="invalid_tensor",
             status=(400,)),
        Case("dimension beyond int64", "POST", infer, body(ones, shape=[1 << 70, width]), status=(400,)),
        Case("ragged data", "POST", infer, body([[1.0], ones]), code="invalid_tensor", status=(400,)),
        Case("nested 70 deep", "POST", infer, body(None, raw=_nest(70, b"1")), status=(400,)),
        Case("strings in a numeric tensor", "POST", infer, body(["1"] * width), code="invalid_tensor", status=(400,)),
        Case("null in a numeric tensor", "POST", infer, body([None] * width), code="invalid_tensor", status=(400,)),
        Case("objects in a numeric tensor", "POST", infer, body([{"a": 1}] * width), code="invalid_tensor",
             status=(400,)),
        Case("wrong datatype", "POST", infer, body([1] * width, datatype="INT64"), code="invalid_tensor",
             status=(400,)),
        Case("unknown datatype", "POST", infer, body(ones, datatype="FP128"), code="invalid_tensor", status=(400,)),
        Case("the input twice", "POST", infer,
             json.dumps({"inputs": [{"name": x, "shape": [1, width], "datatype": "FP32", "data": ones}] * 2}).encode(),
             code="invalid_tensor", status=(400,)),
        Case("no inputs", "POST", infer, b'{"inputs": []}', code="invalid_tensor", status=(400,)),
        Case("unknown output", "POST", infer,
             json.dumps({"inputs": [{"name": x, "shape": [1, width], "datatype": "FP32", "data": ones}],
                         "outputs": [{"name": "nope"}]}).encode(), code="invalid_tensor", status=(400,)),
        Case("10^5 rows in one request", "POST", infer, body([0.5] * (rows * width), shape=[rows, width]),
             allowed=frozenset({replies.OK, replies.REJECTED})),
    ]


# How an AWS_IAM Function URL's request is (mis)signed -> (case name, Lambda's error type). Each must be
# refused with 403 before the function runs, never answered, never a 5xx.
AUTH = {
    "unsigned": ("unsigned request", "AccessDeniedException"),
    "tampered": ("body changed after signing", "InvalidSignatureException"),
    "stale": ("signed 10 minutes ago", "InvalidSignatureException"),
    "future": ("signed 10 minutes ahead", "InvalidSignatureException"),
    "wrong-secret": ("signed with a wrong secret key", "InvalidSignatureException"),
    "unknown-key": ("an access key the account does not have", "UnrecognizedClientException"),
    "bad-token": ("an invalid session token", "UnrecognizedClientException"),
    "wrong-service": ("scoped to another service (execute-api)", "InvalidSignatureException"),
    "wrong-region": ("scoped to another region", "InvalidSignatureException"),
    "malformed": ("an Authorization header without Signature", "IncompleteSignatureException"),
}


def auth_cases(anchors: Anchors) -> list[Case]:
    """Unsigned and tampered requests, for a Function URL with AuthType AWS_IAM."""
    body = json.dumps({"input": "hello world", "model": anchors.model}).encode()
    return [Case(name, "POST", "/v1/embeddings", body, allowed=frozenset({replies.PLATFORM}), status=(403,),
                 auth=variant, platform_code=code) for variant, (name, code) in AUTH.items()]


def _misigned(target: HttpTarget, case: Case) -> list[tuple[str, str]]:
    """The headers of `case`, signed the wrong way its `auth` names."""
    import datetime as dt

    from scripts.twin import sigv4

    region = target.signer.region
    if case.auth == "unsigned":
        return list(case.headers)
    if case.auth == "malformed":
        return [*case.headers, ("authorization", f"AWS4-HMAC-SHA256 Credential={sigv4.ACCESS_KEY}/x, SignedHeaders=host")]
    credentials: tuple[str, ...] = (sigv4.ACCESS_KEY, sigv4.SECRET_KEY)
    service, at, body = sigv4.SERVICE, None, case.body
    if case.auth == "wrong-secret":
        credentials = (sigv4.ACCESS_KEY, "not-the-secret-key")
    elif case.auth == "unknown-key":
        credentials = ("unknown-access-key", sigv4.SECRET_KEY)
    elif case.auth == "bad-token":
        credentials = (sigv4.ACCESS_KEY, sigv4.SECRET_KEY, "not-a-session-token")
    elif case.auth == "wrong-service":
        service = "execute-api"
    elif case.auth == "wrong-region":
        region = "eu-north-1" if region != "eu-north-1" else "us-west-2"
    elif case.auth in ("stale", "future"):
        at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=-10 if case.auth == "stale" else 10)
    elif case.auth == "tampered":
        body = case.body + b" "
    signer = sigv4.Signer(region, credentials, service=service)
    host = f"{target.host}:{target.port}"
    signed = signer.headers(case.method, f"https://{host}{case.path}", {**dict(case.headers), "host": host}, body, at=at)
    return [(k, v) for k, v in signed.items() if k.lower() != "host"]


def run_cases(
    target: HttpTarget, cases: list[Case], *, timeout: float = 30.0, progress: Callable[[str], None] | None = None
) -> HostileReport:
    report = HostileReport()
    for case in cases:
        if progress:
            progress(f"{target.name}: {case.name}")
        if case.auth != "signed" and target.signer is not None:
            reply = send(target, case.method, case.path, case.body, headers=_misigned(target, case),
                         content_length=case.content_length, timeout=timeout, signed=False)
        else:
            reply = send(target, case.method, case.path, case.body, headers=case.headers,
                         content_length=case.content_length, timeout=timeout)
        report.outcomes.append(judge(case, target, reply))
    return report


def judge(case: Case, target: HttpTarget, reply: RawReply) -> CaseOutcome:
    verdict = replies.verdict(reply.status, reply.headers, reply.body, reply.error)
    error = replies.error_shape(reply.body) if verdict == replies.REJECTED else None
    code = error["code"] if error else replies.lambda_shape(reply.headers, reply.body)
    why = []
    if verdict not in case.allowed:
        why.append(f"verdict {verdict} not in {sorted(case.allowed)}")
    if case.status and verdict in (replies.REJECTED, replies.PLATFORM) and reply.status not in case.status:
        why.append(f"status {reply.status}, expected {case.status}")
    if case.code and verdict == replies.REJECTED and code != case.code:
        why.append(f"code {code!r}, expected {case.code!r}")
    if case.platform_code and verdict == replies.PLATFORM and code != case.platform_code:
        why.append(f"error type {code!r}, expected {case.platform_code!r}")
    if case.early and reply.sent >= len(case.body):
        why.append("the whole body was read before the answer: the limit was not checked first")
    if reply.error and not why:
        why.append(reply.error)
    return CaseOutcome(
        case=case.name, target=target.name, status=reply.status, verdict=verdict, code=code, ms=reply.ms,
        sent=reply.sent, size=len(case.body), passed=not why, why="; ".join(why) or "",
    )
