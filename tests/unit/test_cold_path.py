"""What the Lambda handler's import pulls in: every module there is paid on every cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# Powertools imports the bare `botocore` package (~1 ms) to tag SDK user agents; its clients are the cost.
HEAVY = [
    "fastapi",
    "pydantic",
    "starlette",
    "mangum",
    "torch",
    "transformers",
    "boto3",
    "botocore.session",
    "botocore.client",
    "aws_xray_sdk",
    "asyncio",
]


def test_the_handler_imports_nothing_heavy(embedding_dir: Path) -> None:
    code = (
        "import sys, json\n"
        "import functions.inference.handler\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    assert _last_json_line(code, embedding_dir) == []


def test_docs_import_fastapi_only_when_asked(embedding_dir: Path) -> None:
    code = (
        "import sys, json\n"
        "from functions.inference.handler import handler\n"
        "from tests.conftest import event, context\n"
        "handler(event('function_url'), context())\n"
        "before = 'fastapi' in sys.modules\n"
        "ev = event('function_url', rawPath='/openapi.json', body='', isBase64Encoded=False)\n"
        "ev['requestContext']['http'].update(method='GET', path='/openapi.json')\n"
        "status = handler(ev, context())['statusCode']\n"
        "print(json.dumps([before, 'fastapi' in sys.modules, status]))\n"
    )
    assert _last_json_line(code, embedding_dir) == [False, True, 200]


def test_the_default_model_is_tokenized_without_the_tokenizers_library() -> None:
    """Its manifest names compiled WordPiece tables: loading `tokenizers` (40-60 ms) is left out of INIT
    and out of requests."""
    from tests.conftest import DEFAULT_MODEL, EVENTS

    code = (
        "import sys, json, types\n"
        "from functions.inference.handler import handler\n"
        f"event = json.load(open({str(EVENTS / 'function_url.json')!r}))\n"
        "event.update(body=json.dumps({'input': 'hello world', 'model': 'minilm'}), isBase64Encoded=False)\n"
        "reply = handler(event, types.SimpleNamespace(aws_request_id='req-1'))\n"
        "print(json.dumps([reply['statusCode'], 'tokenizers' in sys.modules]))\n"
    )
    assert _last_json_line(code, DEFAULT_MODEL) == [200, False]


def _last_json_line(code: str, model_dir: Path) -> Any:
    """Run `code` in a fresh interpreter serving model_dir; what its last line printed, as JSON."""
    env = {**os.environ, "PREHEAT_MODEL_DIR": str(model_dir), "PREHEAT_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
