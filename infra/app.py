"""The CDK app: `cdk synth` / `cdk deploy` run `python -m infra.app` (see cdk.json).

Reads the one typed config from the context, composes the stack, and runs cdk-nag's AwsSolutions
checks on every synth. A bad config value stops synth with a message naming its key.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

from infra import nag
from infra.config import ROOT, ConfigError, PreheatConfig
from infra.stacks.preheat import PreheatStack


def build(app: cdk.App, *, root: Path = ROOT, checks: bool = True) -> PreheatStack:
    """Compose the app; raises ConfigError for bad context."""
    config = PreheatConfig.from_context(app.node.get_all_context(), root=root)
    stack = PreheatStack(app, config.stack_name, config, root=root)
    if checks:
        nag.enable(app)
    return stack


def main() -> int:
    app = cdk.App()
    try:
        build(app)
    except ConfigError as exc:
        print(f"preheat: bad configuration: {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
