"""`cdk synth` through the pinned CDK CLI, as a user runs it: cdk-nag AwsSolutions clean (a finding
fails synth), cfn-lint clean (only W3005 ignored), and no IAM wildcard beyond what AWS requires."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import ROOT, BuildOutputs, Synth

pytestmark = pytest.mark.slow

# Actions AWS authorizes only on Resource "*" (no resource-level permissions), and who uses them.
STAR_ONLY_ACTIONS = {
    "cloudwatch:GetMetricData",  # the controller reads metrics
    "application-autoscaling:DescribeScheduledActions",  # the controller
    "application-autoscaling:DescribeScalableTargets",  # the controller
    "ecr:GetAuthorizationToken",  # SageMaker pulls its image
}


def cdk_cli() -> list[str]:
    binary = ROOT / "node_modules" / ".bin" / "cdk"
    if not binary.exists():
        pytest.fail(
            "the CDK CLI is not installed: run `make node` (npm ci installs aws-cdk from package.json)"
        )
    return [str(binary)]


def env() -> dict[str, str]:
    return {
        **os.environ,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_VERSION_CHECK": "1",
        # The app runs with this interpreter, whichever venv pytest is in.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }


@pytest.fixture(scope="module")
def cli_synth(outputs: BuildOutputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cdk.out")
    cmd = [
        *cdk_cli(),
        "synth",
        "--quiet",
        "--no-notices",
        "--app",
        f"{sys.executable} -m infra.app",
        "--output",
        str(out),
        *outputs.cli_context(),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"cdk synth failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out


def test_cli_synth_passes_cdk_nag(cli_synth: Path) -> None:
    report = json.loads((cli_synth / "validation-report.json").read_text())
    (plugin,) = report["pluginReports"]
    assert plugin["pluginName"] == "AwsSolutions"
    assert plugin["conclusion"] == "success", plugin.get("violations")
    template = json.loads((cli_synth / "Preheat.template.json").read_text())
    assert template["Resources"], "the stack has resources"


def cfn_lint(template: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W3005", "--", str(template)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cfn_lint_is_clean(cli_synth: Path) -> None:
    proc = cfn_lint(cli_synth / "Preheat.template.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        {"lambda.warmStart": "snapstart", "lambda.urlAuth": "NONE", "lambda.architecture": "arm64"},
        {"target": "moto"},
        {
            "lambda.provisioned": {
                "schedules": [{"name": "day", "schedule": "cron(0 8 * * ? *)", "min": 2, "max": 8}]
            }
        },
    ],
    ids=["snapstart", "moto", "schedules"],
)
def test_cfn_lint_is_clean_for_variants(
    synth: Synth, outputs: BuildOutputs, tmp_path: Path, overrides: dict[str, Any]
) -> None:
    template = synth(outputs.context(**overrides))[1]
    path = tmp_path / "variant.template.json"
    path.write_text(json.dumps(template.to_json()))
    proc = cfn_lint(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    """The check above can fail: a Lambda with an impossible memory size is reported."""
    bad = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Runtime": "python3.12", "Handler": "x.y", "Role": "arn:aws:iam::111122223333:role/x",
                               "Code": {"ZipFile": "x"}, "MemorySize": 99999},
            }
        }
    }  # fmt: skip
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    proc = cfn_lint(path)
    assert proc.returncode != 0 and "99999 is greater than the maximum" in proc.stdout


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for rid, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Policy":
            out += [(rid, s) for s in res["Properties"]["PolicyDocument"]["Statement"]]
        if res["Type"] == "AWS::IAM::Role":
            for policy in res["Properties"].get("Policies", []):
                out += [(rid, s) for s in policy["PolicyDocument"]["Statement"]]
            assert not res["Properties"].get("ManagedPolicyArns"), f"{rid}: managed policies grant too much"
    return out


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(resource: Any) -> str:
    """A resource as text, with references rendered as placeholders (they never hold wildcards)."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Join" in resource:
        return "".join(_text(p) if isinstance(p, str | dict) else "" for p in resource["Fn::Join"][1])
    return "<ref>"


def wildcard_findings(template: dict[str, Any]) -> list[str]:
    findings = []
    for rid, st in statements(template):
        actions = _list(st["Action"])
        findings += [f"{rid}: wildcard action {a}" for a in actions if "*" in a]
        for resource in _list(st["Resource"]):
            text = _text(resource)
            if "*" not in text:
                continue
            if text == "*":
                extra = set(actions) - STAR_ONLY_ACTIONS
                if extra:
                    findings.append(
                        f"{rid}: Resource '*' for {sorted(extra)}, which support resource-level permissions"
                    )
            elif text.endswith(":log-group:/aws/sagemaker/Endpoints/preheat-stand-in:*"):
                pass  # SageMaker names its log streams at run time; the group is this endpoint's
            elif text.endswith(":scalable-target/*"):
                if "aws:ResourceTag/preheat:scalable-target" not in json.dumps(st.get("Condition", {})):
                    findings.append(f"{rid}: scalable-target/* without the tag condition")
            elif text.endswith(":endpoint-config/preheat-stand-in*"):
                pass  # endpoint configs the controller creates, named after the endpoint
            else:
                findings.append(f"{rid}: wildcard resource {text}")
    return findings


def test_no_iam_wildcards_beyond_what_aws_requires(cli_synth: Path) -> None:
    template = json.loads((cli_synth / "Preheat.template.json").read_text())
    assert wildcard_findings(template) == []
    used = {a for _, st in statements(template) for a in _list(st["Action"]) if "*" in _list(st["Resource"])}
    assert used == STAR_ONLY_ACTIONS


def test_the_wildcard_check_catches_a_broad_grant() -> None:
    template = {
        "Resources": {
            "P": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/k"},
                            {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"},
                            {"Effect": "Allow", "Action": "lambda:InvokeFunction",
                             "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["F", "Arn"]}, ":*"]]}},
                        ]
                    }
                },
            }
        }
    }  # fmt: skip
    findings = wildcard_findings(template)
    assert len(findings) == 3, findings


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding(outputs: BuildOutputs, tmp_path: Path) -> None:
    """cdk-nag is really on: a broad grant added to the same app stops synth."""
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam

    from infra.app import build

    app = cdk.App(context=outputs.context(**{"sagemaker.enabled": False}), outdir=str(tmp_path))
    stack = build(app)
    stack.inference.role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for v in report["pluginReports"][0]["violations"]}
    assert "AwsSolutions-IAM5[Action::s3:*]" in rules


def test_make_synth_target_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "\nsynth:" in makefile and "cdk synth" in makefile
    assert shutil.which("node") is not None, "the CDK CLI needs Node.js"
