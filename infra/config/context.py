"""Where the context comes from: the files and command line the CDK CLI reads, merged with its
precedence, and the `preheat:a.b.c` overrides applied onto the `preheat` object."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from functions.errors import ConfigError
from infra.config.reader import Node, parse_json
from infra.config.schema import CONTEXT_KEY, ROOT, PreheatConfig
from infra.config.sections import parse

# The files the CDK CLI reads context from, in a project directory (and ~/.cdk.json for the user's).
PROJECT_CONFIG = "cdk.json"
PROJECT_CONTEXT = "cdk.context.json"
USER_CONFIG = Path.home() / ".cdk.json"


def cli_context(
    root: Path = ROOT, overrides: Iterable[str] = (), *, user_config: Path | None = USER_CONFIG
) -> dict[str, Any]:
    """The context the CDK CLI hands `python -m infra.app` when run in `root` with `-c KEY=VALUE`
    overrides: the CLI's precedence, lowest first, is ~/.cdk.json's `context`, cdk.context.json,
    cdk.json's `context`, then the command line; objects merge key by key, and -c values stay
    strings as the CLI passes them. For programs that need the app's config without running the CDK
    (the local twin): `load()` then parses it exactly as the app does."""
    bags: list[Mapping[str, Any]] = []
    if user_config is not None:
        bags.append(_file_context(user_config, "context"))
    bags.append(_file_context(root / PROJECT_CONTEXT, None))
    bags.append(_file_context(root / PROJECT_CONFIG, "context"))
    command_line: dict[str, Any] = {}
    for assignment in overrides:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"context override {assignment!r} must look like KEY=VALUE (e.g. preheat:lambda.memoryMb=3008)"
            )
        command_line[key] = value
    bags.append(command_line)
    merged: dict[str, Any] = {}
    for bag in bags:
        merged = _merge(merged, bag)
    return merged


def load(
    root: Path = ROOT, overrides: Iterable[str] = (), *, user_config: Path | None = USER_CONFIG
) -> PreheatConfig:
    """The PreheatConfig `cdk synth -c ...` in `root` would build (see cli_context)."""
    return PreheatConfig.from_context(cli_context(root, overrides, user_config=user_config), root=root)


def _file_context(path: Path, key: str | None) -> Mapping[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    value = data.get(key, {}) if key is not None and isinstance(data, Mapping) else data
    if not isinstance(value, Mapping):
        where = f"{path}'s '{key}'" if key else str(path)
        raise ConfigError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(low)
    for key, value in high.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


def _set_path(target: dict[str, Any], path: str, value: Any, key: str) -> None:
    parts = path.split(".")
    if not all(parts):
        raise ConfigError(f"context key '{key}' must look like 'preheat:lambda.memoryMb'")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"context key '{key}': '{part}' is not an object")
        node = child
    node[parts[-1]] = value


def read_context(context: Mapping[str, Any], *, root: Path = ROOT) -> PreheatConfig:
    """The config of the app's `context`: `preheat` (an object), then every `preheat:a.b.c` override."""
    raw = context.get(CONTEXT_KEY, {})
    if isinstance(raw, str):  # `-c preheat='{"...": ...}'`
        raw = parse_json(raw, CONTEXT_KEY)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"context key '{CONTEXT_KEY}' must be an object, got {type(raw).__name__}")
    merged: dict[str, Any] = json.loads(json.dumps(raw))
    for key, value in context.items():
        if key.startswith(CONTEXT_KEY + ":"):
            _set_path(merged, key[len(CONTEXT_KEY) + 1 :], value, key)
    return parse(Node(merged, CONTEXT_KEY), root)
