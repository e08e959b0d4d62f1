"""The synthesized CDK stack (infra/, issue 7): who can get in.

- The Function URL uses AWS_IAM unless the config says NONE (and then NONE is what is synthesized).
- IAM statements: no wildcard actions, Resource "*" only where AWS requires it, scoped ARNs
  (scripts/reliability/iam.py says exactly which rules).
- No credentials in the template or in the assets' environment.
Skipped where aws-cdk-lib is not installed (the `infra` extra).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from scripts.reliability import iam
from tests.support.twin import ROOT

pytest.importorskip("aws_cdk", reason="aws-cdk-lib is not installed (pip install -e .[infra])")
app_module = pytest.importorskip("infra.app", reason="infra/app.py is not importable")

pytestmark = [pytest.mark.timeout(600)]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture(scope="module")
def synthesize(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from tests.infra.conftest import make_build_outputs

    outputs = make_build_outputs(tmp_path_factory.mktemp("build"))

    def synth(**overrides: Any) -> dict[str, Any]:
        app = cdk.App(context=outputs.context(**overrides), outdir=str(tmp_path_factory.mktemp("cdk.out")))
        stack = app_module.build(app, root=ROOT, checks=False)
        template: dict[str, Any] = Template.from_stack(stack).to_json()
        return template

    return synth


def test_the_default_stack_lets_in_only_iam_signed_callers_with_least_privilege(synthesize: Any) -> None:
    template = synthesize()
    urls = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Url"]
    assert urls and all(u["Properties"]["AuthType"] == "AWS_IAM" for u in urls)
    policies = list(iam.statements(template))
    assert len(policies) >= 5  # the inference, warmer, controller and SageMaker roles were audited
    assert iam.audit(template) == []


def test_an_open_url_is_synthesized_only_when_asked_for(synthesize: Any) -> None:
    template = synthesize(**{"lambda.urlAuth": "NONE"})
    assert "AuthType 'NONE'" in "\n".join(iam.audit(template))  # the audit above would have caught it
    # Asked for, an open URL gets public permissions that hold only through the URL, and nothing else loosens.
    assert iam.audit(template, url_auth="NONE") == []


def test_no_credentials_in_the_synthesized_assembly(synthesize: Any, tmp_path: Path) -> None:
    template = synthesize()
    from scripts.reliability import leaks

    assert leaks.scan_text(json.dumps(template), "template") == []
