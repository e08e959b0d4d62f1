"""Audit a synthesized CloudFormation template for who can get in: Function URL auth types, IAM
statements with wildcards beyond what AWS requires, credentials written into the template.

Rules, each a finding when broken:
- every AWS::Lambda::Url has AuthType AWS_IAM (unless the caller expects NONE);
- no statement uses NotAction or NotResource, and no Allow grants an action with a `*` in it;
- "Resource": "*" only for actions AWS does not scope to resources (STAR_ONLY, from the Service
  Authorization Reference: these have no resource types, so a narrower Resource cannot be written);
- a resource ARN with a `*` has its service, region and account spelled out and something before the
  `*` in its resource part (a name prefix, a scalable-target id, log streams of one group);
- no Lambda permission lets everyone (`*`) invoke a function or its URL (when the caller expects an open
  URL: only through that URL);
- no AWS credentials or private keys anywhere in the template, and no passwords inside URLs in
  environment variables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from scripts.reliability import leaks

STAR_ONLY = frozenset(
    {
        "ecr:GetAuthorizationToken",
        "cloudwatch:GetMetricData",
        "cloudwatch:GetMetricStatistics",
        "cloudwatch:ListMetrics",
        "cloudwatch:PutMetricData",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingActivities",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:DescribeScheduledActions",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
        "logs:DescribeLogGroups",
    }
)
# Resource types whose ids AWS generates (a scalable target's id is only known after it exists).
GENERATED_IDS = frozenset({"scalable-target"})
_USERINFO = re.compile(r"://[^/@\s:]+:[^/@\s]+@")


def _text(value: Any) -> str:
    """A resource as text: Fn::Join/Fn::Sub flattened, other intrinsics as ${...} placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            return str(arg[0]).join(_text(v) for v in arg[1])
        if key == "Fn::Sub":
            return _text(arg[0] if isinstance(arg, list) else arg)
        if key == "Ref":
            return "${" + str(arg) + "}"
        if key == "Fn::GetAtt":
            return "${" + (".".join(arg) if isinstance(arg, list) else str(arg)) + "}"
    return "${" + json.dumps(value, sort_keys=True) + "}"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(resource name, statement) for every IAM policy document in the template."""
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        documents = []
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props.get("PolicyDocument", {}))
        if kind in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            documents += [p.get("PolicyDocument", {}) for p in props.get("Policies", [])]
        for document in documents:
            for statement in _list(document.get("Statement", [])):
                yield name, statement


def audit(template: dict[str, Any], *, url_auth: str = "AWS_IAM") -> list[str]:
    findings: list[str] = []
    resources = template.get("Resources", {})
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Lambda::Url" and props.get("AuthType") != url_auth:
            findings.append(f"{name}: Function URL AuthType {props.get('AuthType')!r}, expected {url_auth}")
        if resource.get("Type") == "AWS::Lambda::Permission" and props.get("Principal") == "*":
            # What an open URL needs (and all it may grant): InvokeFunctionUrl with auth NONE, and
            # InvokeFunction only through the URL.
            through_url = props.get("FunctionUrlAuthType") == "NONE" or props.get("InvokedViaFunctionUrl") is True
            if not (url_auth == "NONE" and through_url):
                findings.append(f"{name}: lets anyone call {props.get('Action')}")
        if resource.get("Type") == "AWS::Lambda::Function":
            for key, value in (props.get("Environment", {}).get("Variables", {}) or {}).items():
                if isinstance(value, str) and _USERINFO.search(value):
                    findings.append(f"{name}: environment variable {key} holds a password in a URL")
    for name, statement in statements(template):
        if "NotAction" in statement or "NotResource" in statement:
            findings.append(f"{name}: NotAction/NotResource grants everything else")
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in _list(statement.get("Action", []))]
        for action in actions:
            if "*" in action:
                findings.append(f"{name}: wildcard action {action!r}")
        for resource in (_text(r) for r in _list(statement.get("Resource", []))):
            if resource == "*":
                loose = sorted(set(actions) - STAR_ONLY)
                if loose:
                    findings.append(f"{name}: Resource '*' for {loose}, which AWS scopes to resources")
            elif "*" in resource:
                findings += [f"{name}: {problem}" for problem in _arn_problems(resource)]
    for finding in leaks.scan_text(json.dumps(template), "template"):
        findings.append(f"{finding.kind} in the template: {finding.excerpt}")
    return findings


def _arn_problems(arn: str) -> list[str]:
    parts = arn.split(":", 5)
    if len(parts) < 6 or not parts[0].startswith("arn"):
        return [f"wildcard in a resource that is not an ARN: {arn!r}"]
    _, _, service, region, account, rest = parts
    problems = []
    if "*" in service or "*" in region or "*" in account:
        problems.append(f"wildcard service/region/account in {arn!r}")
    typed = re.match(r"^([A-Za-z-]+)[:/](.*)$", rest)
    kind, name = (typed.group(1), typed.group(2)) if typed else ("", rest)
    if name.startswith("*") and kind not in GENERATED_IDS:
        problems.append(f"wildcard resource name in {arn!r}")
    return problems
