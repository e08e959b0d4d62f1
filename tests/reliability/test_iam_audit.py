"""The template auditor (scripts/reliability/iam.py) on small templates: it must find what it claims
to find, or the check on the real stack (test_security_infra.py) would pass for nothing."""

from __future__ import annotations

from typing import Any

from scripts.reliability import iam


def template(*statements: dict[str, Any], **resources: dict[str, Any]) -> dict[str, Any]:
    policy = {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": list(statements)}}}
    return {"Resources": {"Policy": policy, **resources}}


def allow(action: Any, resource: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def join(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


SCOPED = join("arn:", {"Ref": "AWS::Partition"}, ":dynamodb:", {"Ref": "AWS::Region"}, ":",
              {"Ref": "AWS::AccountId"}, ":table/cache")


def test_a_tight_template_passes() -> None:
    url = {"Type": "AWS::Lambda::Url", "Properties": {"AuthType": "AWS_IAM"}}
    tight = template(
        allow(["dynamodb:BatchGetItem"], {"Fn::GetAtt": ["Table", "Arn"]}),
        allow("ecr:GetAuthorizationToken", "*"),
        allow(["cloudwatch:GetMetricData", "application-autoscaling:DescribeScalableTargets"], "*"),
        allow("application-autoscaling:PutScheduledAction",
              join("arn:aws:application-autoscaling:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
                   ":scalable-target/*")),
        allow("logs:PutLogEvents", "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:*"),
        allow("dynamodb:GetItem", SCOPED),
        Url=url,
    )
    assert iam.audit(tight) == []


def test_every_kind_of_looseness_is_found() -> None:
    loose = template(
        allow("*", "*"),
        allow("s3:Get*", "arn:aws:s3:::bucket/key"),
        allow("dynamodb:GetItem", "*"),
        allow("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:123456789012:function:*"),
        allow("lambda:InvokeFunction", "arn:aws:lambda:*:*:function:fn"),
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        Url={"Type": "AWS::Lambda::Url", "Properties": {"AuthType": "NONE"}},
        Open={"Type": "AWS::Lambda::Permission", "Properties": {"Action": "lambda:InvokeFunctionUrl", "Principal": "*"}},
        Fn={"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {
            "PREHEAT_CACHE_REDIS_URL": "rediss://default:hunter2@cache:6379", "KEY": "AKIA" + "Z" * 16}}}},
    )
    findings = "\n".join(iam.audit(loose))
    for expected in ("wildcard action '*'", "wildcard action 's3:Get*'", "Resource '*' for ['dynamodb:GetItem']",
                     "wildcard resource name", "wildcard service/region/account", "NotAction",
                     "AuthType 'NONE'", "lets anyone call", "password in a URL", "aws_access_key_id"):
        assert expected in findings, expected
    # A URL is expected to be open only when the caller says so, and then anyone may call it only through it.
    url = {"Type": "AWS::Lambda::Url", "Properties": {"AuthType": "NONE"}}
    via_url = {"Type": "AWS::Lambda::Permission",
               "Properties": {"Action": "lambda:InvokeFunction", "Principal": "*", "InvokedViaFunctionUrl": True}}
    assert iam.audit(template(Url=url, ViaUrl=via_url), url_auth="NONE") == []
    assert "lets anyone call" in "\n".join(iam.audit(template(Url=url, Open=loose["Resources"]["Open"] | {
        "Properties": {"Action": "lambda:InvokeFunction", "Principal": "*"}}), url_auth="NONE"))
