"""`preheat invoke`: one request to a Function URL, SigV4-signed when its AuthType is AWS_IAM.

By default the running twin's inference function (.preheat/twin.json: its URL, its CA, its auth type;
signed with the twin's credentials). `--url URL --aws` calls a deployed Function URL instead, signed
with your AWS credentials (botocore's chain: environment, ~/.aws, SSO, instance role) for service
`lambda` in the URL's region. Prints the status, the headers that say how it was served, and the body.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_REGION = re.compile(r"\.lambda-url\.([a-z0-9-]+)\.on\.aws$")
SHOWN = ("content-type", "x-amzn-requestid", "x-preheat-start", "x-preheat-cache", "x-amzn-errortype")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="/v1/models", help="the path to call (default /v1/models)")
    parser.add_argument("-d", "--data", help="the JSON body (or @FILE); with a body the method is POST")
    parser.add_argument("-X", "--method", help="the HTTP method (default: GET, or POST with --data)")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="NAME: VALUE", help="repeat")
    parser.add_argument("--function", default="preheat-inference", help="the twin function whose URL to call")
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat"), help="where the twin keeps twin.json")
    parser.add_argument("--url", help="a Function URL (default: the twin's)")
    parser.add_argument("--aws", action="store_true", help="sign with your AWS credentials (a deployed --url)")
    parser.add_argument("--region", help="the region to sign for (default: the URL's, or the twin's)")
    parser.add_argument("--unsigned", action="store_true", help="send it unsigned (an AWS_IAM URL answers 403)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.syntax import Syntax

    from scripts.twin import sigv4
    from scripts.twin.client import UrlClient
    from scripts.twin.state import read_state

    console = Console()
    body = _body(args.data)
    method = (args.method or ("POST" if body is not None else "GET")).upper()
    headers = {}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise SystemExit(f"preheat invoke: --header {header!r} must be 'NAME: VALUE'")
        headers[name.strip().lower()] = value.strip()
    if body is not None:
        headers.setdefault("content-type", "application/json")
    credentials: Any = None
    if args.url:
        url, ca, iam = args.url, None, not args.unsigned
        running = read_state(args.state_dir)
        region = args.region or _region_of(url) or (running.region if running else None)
        if args.aws:
            import botocore.session

            credentials = botocore.session.get_session().get_credentials()
            if credentials is None:
                raise SystemExit("preheat invoke --aws: no AWS credentials found (aws configure, or AWS_PROFILE)")
            credentials = credentials.get_frozen_credentials()
        elif not _is_local(url):
            raise SystemExit("preheat invoke: a deployed --url needs --aws (your credentials) to be signed")
    else:
        state = read_state(args.state_dir)
        if state is None:
            raise SystemExit(f"preheat invoke: no twin running ({args.state_dir / 'twin.json'}): `preheat up` first, "
                             "or pass --url URL --aws for a deployed Function URL")
        url, ca = state.url(args.function), state.ca
        iam = state.url_auth(args.function) == "AWS_IAM" and not args.unsigned
        region = args.region or state.region
    if iam and region is None:
        raise SystemExit(f"preheat invoke: cannot tell the region of {url}: pass --region")
    signer = sigv4.Signer(region, credentials) if iam and region is not None else None
    client = UrlClient(url, ca, signer=signer)
    path = args.path if args.path.startswith("/") else "/" + args.path
    base = urlsplit(url).path.rstrip("/")
    try:
        reply = client.request(method, base + path, body, headers)
    except OSError as exc:
        console.print(f"[red]{url}: {exc}[/]")
        return 1
    finally:
        client.close()
    style = "green" if reply.status < 400 else "red"
    auth = "SigV4-signed (lambda, " + str(region) + ")" if signer else "unsigned"
    console.print(f"[{style}]{reply.status}[/] {method} {url.rstrip('/')}{path}  [dim]{auth}, {reply.ms:.1f} ms[/]",
                  highlight=False)
    for name in SHOWN:
        if name in reply.headers:
            console.print(f"[dim]{name}: {reply.headers[name]}[/]", highlight=False)
    try:
        text = json.dumps(reply.json(), indent=2)[:20000]
    except ValueError:
        text = reply.body.decode("utf-8", "replace")[:20000]
    with contextlib.suppress(BrokenPipeError):  # `preheat invoke ... | head`
        if sys.stdout.isatty():
            console.print(Syntax(text, "json", word_wrap=True))
        else:
            print(text, flush=True)
    return 0 if reply.status < 400 else 1


def _body(data: str | None) -> bytes | None:
    if data is None:
        return None
    raw = Path(data[1:]).read_bytes() if data.startswith("@") else data.encode()
    try:
        json.loads(raw)
    except ValueError as exc:
        raise SystemExit(f"preheat invoke: --data is not JSON: {exc}") from None
    return raw


def _region_of(url: str) -> str | None:
    match = _REGION.search(urlsplit(url).hostname or "")
    return match.group(1) if match else None


def _is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")
