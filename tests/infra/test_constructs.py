"""Every construct, through the synthesized template (aws_cdk.assertions), never by hashed logical ids."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.infra.conftest import ROOT, BuildOutputs, Synth, make_build_outputs


def resources(template: Any, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template.find_resources(kind)
    return found


def only(template: Any, kind: str, **props: Any) -> dict[str, Any]:
    """The one resource of `kind` whose properties match `props` (a partial match)."""
    pattern = {"Properties": Match.object_like(props)} if props else {}
    found = template.find_resources(kind, pattern)
    assert len(found) == 1, f"expected one {kind} matching {props}, found {len(found)}"
    return next(iter(found.values()))  # type: ignore[no-any-return]


def ref_of(template: Any, kind: str, **props: Any) -> str:
    found = template.find_resources(kind, {"Properties": Match.object_like(props)} if props else {})
    assert len(found) == 1
    return next(iter(found))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def default(synth: Synth, outputs: BuildOutputs) -> Any:
    return synth(outputs.context())[1]


# -- the inference function ---------------------------------------------------------------------------


def test_inference_function_runtime_layers_and_settings(default: Any) -> None:
    fn = only(default, "AWS::Lambda::Function", Handler="functions.inference.handler.handler")["Properties"]
    assert fn["Runtime"] == "python3.12"
    assert fn["Architectures"] == ["x86_64"]
    assert fn["MemorySize"] == 2048
    assert fn["Timeout"] == 30
    assert "ReservedConcurrentExecutions" not in fn
    assert len(fn["Layers"]) == 2
    env = fn["Environment"]["Variables"]
    assert env["PREHEAT_MODEL_DIR"] == "/opt/model"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Preheat"
    assert env["POWERTOOLS_SERVICE_NAME"] == "preheat"
    assert env["PREHEAT_CACHE_MEMORY_BYTES"] == str(64 * 1024 * 1024)
    table = ref_of(default, "AWS::DynamoDB::Table")
    assert env["PREHEAT_CACHE_TABLE"] == {"Ref": table}
    layers = resources(default, "AWS::Lambda::LayerVersion")
    descriptions = sorted(layer["Properties"]["Description"] for layer in layers.values())
    assert descriptions[0].startswith("model stand-in (text-embedding), id ") and "x86_64" in descriptions[1]
    deps = next(layer for layer in layers.values() if "x86_64" in layer["Properties"]["Description"])
    assert deps["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    assert deps["Properties"]["CompatibleRuntimes"] == ["python3.12"]


def test_every_runtime_setting_reaches_the_environment(synth: Synth, outputs: BuildOutputs) -> None:
    from functions.inference.settings import Settings

    ctx = outputs.context(
        **{
            "lambda.runtime": {
                "threads": 2,
                "batchSize": 8,
                "maxInputs": 64,
                "truncate": False,
                "basePath": "/prod",
            },
            "cache.memoryBytes": 0,
            "cache.table": False,
            "service": "embedder",
            "namespace": "Acme/Embed",
            "sagemaker.enabled": False,
        }
    )
    template = synth(ctx)[1]
    env = only(template, "AWS::Lambda::Function", Handler="functions.inference.handler.handler")[
        "Properties"
    ]["Environment"]["Variables"]
    assert "PREHEAT_CACHE_TABLE" not in env
    assert not resources(template, "AWS::DynamoDB::Table")
    # The runtime reads exactly these values back (config -> env -> Settings, one way).
    settings = Settings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert (settings.threads, settings.batch_size, settings.max_inputs) == (2, 8, 64)
    assert settings.truncate is False and settings.base_path == "/prod"
    assert (settings.service, settings.metrics_namespace) == ("embedder", "Acme/Embed")
    assert env["PREHEAT_CACHE_MEMORY_BYTES"] == "0"


def test_alias_live_with_provisioned_concurrency_and_target_tracking_on_maximum(default: Any) -> None:
    alias = only(default, "AWS::Lambda::Alias", Name="live")["Properties"]
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 1}
    target = only(default, "AWS::ApplicationAutoScaling::ScalableTarget", ServiceNamespace="lambda")
    props = target["Properties"]
    assert props["ScalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert (props["MinCapacity"], props["MaxCapacity"]) == (1, 10)
    function = ref_of(default, "AWS::Lambda::Function", Handler="functions.inference.handler.handler")
    assert props["ResourceId"] == {"Fn::Join": ["", ["function:", {"Ref": function}, ":live"]]}
    alias_id = ref_of(default, "AWS::Lambda::Alias", Name="live")
    assert alias_id in target["DependsOn"]
    role = json.dumps(props["RoleARN"])
    assert "aws-service-role/lambda.application-autoscaling.amazonaws.com/" in role
    assert "AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency" in role
    assert not [
        r
        for r in resources(default, "AWS::IAM::Role").values()
        if "application-autoscaling" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ], "no extra, permission-less roles for Application Auto Scaling"
    policy = only(
        default,
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        TargetTrackingScalingPolicyConfiguration=Match.object_like(
            {"CustomizedMetricSpecification": Match.any_value()}
        ),
    )["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    metric = policy["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ProvisionedConcurrencyUtilization"
    assert metric["Namespace"] == "AWS/Lambda"
    assert metric["Statistic"] == "Maximum"
    assert policy["TargetValue"] == 0.7


def test_function_url_uses_iam_auth_on_the_alias_by_default(default: Any) -> None:
    url = only(default, "AWS::Lambda::Url")["Properties"]
    assert url["AuthType"] == "AWS_IAM"
    assert url["Qualifier"] == "live"
    assert not default.find_resources(
        "AWS::Lambda::Permission", {"Properties": {"FunctionUrlAuthType": "NONE"}}
    ), "no public invoke permission unless asked"
    outputs = default.find_outputs("FunctionUrl")
    assert outputs, "the URL is a stack output"


@pytest.fixture(scope="module")
def snapstart(synth: Synth, outputs: BuildOutputs) -> Any:
    ctx = outputs.context(
        **{
            "lambda.warmStart": "snapstart",
            "lambda.urlAuth": "NONE",
            "lambda.architecture": "arm64",
            "lambda.memoryMb": 3008,
            "lambda.timeoutSeconds": 60,
            "lambda.reservedConcurrency": 20,
            "sagemaker.enabled": False,
        }
    )
    return synth(ctx)[1]


def test_snapstart_variant_hooks_handler_and_no_provisioned_concurrency(snapstart: Any) -> None:
    fn = only(snapstart, "AWS::Lambda::Function", Handler="functions.inference.snapstart.handler")[
        "Properties"
    ]
    assert fn["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert fn["Architectures"] == ["arm64"]
    assert (fn["MemorySize"], fn["Timeout"], fn["ReservedConcurrentExecutions"]) == (3008, 60, 20)
    alias = only(snapstart, "AWS::Lambda::Alias", Name="live")["Properties"]
    assert "ProvisionedConcurrencyConfig" not in alias
    assert not resources(snapstart, "AWS::ApplicationAutoScaling::ScalableTarget")
    deps = [
        layer
        for layer in resources(snapstart, "AWS::Lambda::LayerVersion").values()
        if "CompatibleArchitectures" in layer["Properties"]
    ]
    assert deps[0]["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_public_url_only_when_asked(snapstart: Any) -> None:
    assert only(snapstart, "AWS::Lambda::Url")["Properties"]["AuthType"] == "NONE"
    permission = only(snapstart, "AWS::Lambda::Permission", FunctionUrlAuthType="NONE")["Properties"]
    assert permission["Action"] == "lambda:InvokeFunctionUrl"
    assert permission["Principal"] == "*"


def test_snapstart_hooks_reseed_and_renew(load_handler: Any, embedding_dir: Any) -> None:
    """The hooks run here as plain functions: the before-snapshot one runs an inference, the
    after-restore one draws fresh seeds and renews whatever holds connections."""
    import random
    import sys

    load_handler(embedding_dir)
    sys.modules.pop("functions.inference.snapstart", None)
    import functions.inference.snapstart as snap

    try:
        calls: list[str] = []
        snap._entry.RUNTIME.plane.after_restore = lambda: calls.append("renewed")  # type: ignore[attr-defined]
        pool = SimpleNamespace(close=lambda: calls.append("closed"))
        snap._entry.RUNTIME.task.source = SimpleNamespace(shared=pool)  # type: ignore[attr-defined]
        snap.before_snapshot()
        random.seed(7)
        first = random.random()
        random.seed(7)
        snap.after_restore()
        assert random.random() != first
        assert calls == ["closed", "renewed"]
        assert snap.handler is snap._entry.handler
    finally:
        sys.modules.pop("functions.inference.snapstart", None)


def test_scheduled_capacity_actions(synth: Synth, outputs: BuildOutputs) -> None:
    schedules = [
        {
            "name": "workday",
            "schedule": "cron(0 8 ? * MON-FRI *)",
            "min": 5,
            "max": 20,
            "timezone": "Europe/Paris",
        },
        {"name": "night", "schedule": "cron(0 20 ? * * *)", "min": 1, "max": 5},
    ]
    template = synth(
        outputs.context(**{"lambda.provisioned": {"min": 2, "max": 20, "schedules": schedules}})
    )[1]
    target = only(template, "AWS::ApplicationAutoScaling::ScalableTarget", ServiceNamespace="lambda")
    actions = {a["ScheduledActionName"]: a for a in target["Properties"]["ScheduledActions"]}
    assert actions["workday"]["Schedule"] == "cron(0 8 ? * MON-FRI *)"
    assert actions["workday"]["ScalableTargetAction"] == {"MinCapacity": 5, "MaxCapacity": 20}
    assert actions["workday"]["Timezone"] == "Europe/Paris"
    assert actions["night"]["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 5}
    alias = only(template, "AWS::Lambda::Alias", Name="live")["Properties"]
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}


def test_container_image_variant(synth: Synth, image_root: BuildOutputs) -> None:
    stack, template = synth(
        image_root.context(**{"lambda.package": "image", "sagemaker.enabled": False}), root=image_root.root
    )
    fn = only(template, "AWS::Lambda::Function", PackageType="Image")["Properties"]
    assert "Layers" not in fn and "Handler" not in fn
    assert fn["Environment"]["Variables"]["PREHEAT_MODEL_DIR"] == "/opt/model"
    # The image holds the model and dependencies; only the controller still needs a layer (numpy).
    layers = [
        layer["Properties"]["Description"]
        for layer in resources(template, "AWS::Lambda::LayerVersion").values()
    ]
    assert layers == ["numpy for the controller"]
    # Synth stages the build context (no Docker needed): only the packages and layers the image copies.
    outdir = Path(stack.node.root.outdir)
    assets = json.loads((outdir / f"{stack.artifact_id}.assets.json").read_text())
    images = assets["dockerImages"]
    assert len(images) == 1
    source = next(iter(images.values()))["source"]
    assert source["dockerFile"] == "infra/images/lambda.Dockerfile"
    assert source["dockerBuildArgs"] == {
        "MODEL_LAYER": "build/layers/model-stand-in",
        "DEPS_LAYER": "build/layers/deps-x86_64",
    }
    staged = outdir / source["directory"]
    assert (staged / "functions" / "inference" / "handler.py").is_file()
    assert (staged / "build" / "layers" / "model-stand-in" / "model" / "manifest.json").is_file()
    assert not (staged / "build" / "layers" / "deps-arm64").exists()
    assert not (staged / "build" / "models").exists()
    assert not (staged / "build" / "sagemaker").exists()


# -- the SageMaker serverless endpoint ---------------------------------------------------------------


def test_sagemaker_serverless_endpoint(default: Any) -> None:
    model = only(default, "AWS::SageMaker::Model")["Properties"]
    container = model["PrimaryContainer"]
    assert "Image" in container and "ModelDataUrl" in container
    assert container["Environment"]["PREHEAT_MODEL_DIR"] == "/opt/ml/model"
    assert container["Environment"]["AWS_REGION"] == {"Ref": "AWS::Region"}
    table = ref_of(default, "AWS::DynamoDB::Table")
    assert container["Environment"]["PREHEAT_CACHE_TABLE"] == {"Ref": table}
    assert container["Environment"]["POWERTOOLS_METRICS_NAMESPACE"] == "Preheat"
    config = only(default, "AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": 3072,
        "MaxConcurrency": 10,
        "ProvisionedConcurrency": 1,
    }
    assert config["EndpointConfigName"].startswith("preheat-stand-in-")
    endpoint = only(default, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointName"] == "preheat-stand-in"
    config_id = ref_of(default, "AWS::SageMaker::EndpointConfig")
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}


def test_sagemaker_provisioned_concurrency_autoscaling(default: Any) -> None:
    target = only(default, "AWS::ApplicationAutoScaling::ScalableTarget", ServiceNamespace="sagemaker")
    props = target["Properties"]
    assert props["ScalableDimension"] == "sagemaker:variant:DesiredProvisionedConcurrency"
    assert props["ResourceId"] == "endpoint/preheat-stand-in/variant/AllTraffic"
    assert (props["MinCapacity"], props["MaxCapacity"]) == (1, 5)
    assert ref_of(default, "AWS::SageMaker::Endpoint") in target["DependsOn"]
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in json.dumps(props["RoleARN"])
    only(
        default,
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        TargetTrackingScalingPolicyConfiguration={
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"
            },
            "TargetValue": 0.7,
        },
    )


def test_sagemaker_image_uri_instead_of_a_build(synth: Synth, outputs: BuildOutputs) -> None:
    uri = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/preheat:1.0"
    ctx = outputs.context(**{"sagemaker.imageUri": uri, "sagemaker.provisionedConcurrency": 0})
    template = synth(ctx)[1]
    assert only(template, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["Image"] == uri
    variant = only(template, "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"][0]
    assert "ProvisionedConcurrency" not in variant["ServerlessConfig"]
    assert not template.find_resources(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"Properties": {"ServiceNamespace": "sagemaker"}}
    )
    statements = _statements(template, "sagemaker.amazonaws.com")
    assert {
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        "Effect": "Allow",
        "Resource": {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, ":ecr:eu-west-1:111122223333:repository/preheat"],
            ]
        },
    } in statements


# -- warmer and controller ---------------------------------------------------------------------------


def _role_of(template: Any, handler: str) -> str:
    fn = only(template, "AWS::Lambda::Function", Handler=handler)
    return fn["Properties"]["Role"]["Fn::GetAtt"][0]  # type: ignore[no-any-return]


def _statements(template: Any, principal: str | None = None, role: str | None = None) -> list[dict[str, Any]]:
    roles = resources(template, "AWS::IAM::Role")
    wanted = {
        rid
        for rid, r in roles.items()
        if (role is None or rid == role)
        and (
            principal is None
            or r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"].get("Service")
            == principal
        )
    }
    out: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if any(r.get("Ref") in wanted for r in policy["Properties"]["Roles"]):
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_warmer_schedule_settings_and_exactly_its_permissions(default: Any) -> None:
    from warmers.settings import WarmerSettings

    fn = only(default, "AWS::Lambda::Function", Handler="warmers.warmer.handler")["Properties"]
    env = fn["Environment"]["Variables"]
    inference = ref_of(default, "AWS::Lambda::Function", Handler="functions.inference.handler.handler")
    assert env["PREHEAT_WARM_FUNCTION"] == {"Ref": inference}
    settings = WarmerSettings.from_env({**env, "PREHEAT_WARM_FUNCTION": "fn"})
    assert (settings.qualifier, settings.concurrency, settings.hold_ms) == ("live", 2, 100)
    assert "Layers" not in fn, "the warmer needs nothing beyond the Lambda runtime"
    rule = only(default, "AWS::Events::Rule", ScheduleExpression="rate(5 minutes)")["Properties"]
    warmer = ref_of(default, "AWS::Lambda::Function", Handler="warmers.warmer.handler")
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [warmer, "Arn"]}
    statements = _statements(default, role=_role_of(default, "warmers.warmer.handler"))
    actions = sorted(a for s in statements for a in _actions(s))
    assert actions == ["lambda:InvokeFunction", "logs:CreateLogStream", "logs:PutLogEvents"]
    invoke = next(s for s in statements if "lambda:InvokeFunction" in _actions(s))
    alias = ref_of(default, "AWS::Lambda::Alias", Name="live")
    assert invoke["Resource"] == {"Ref": alias}, "the alias only: not function:* nor $LATEST"


def _controller_env(template: Any) -> dict[str, Any]:
    fn = only(template, "AWS::Lambda::Function", Handler="warmers.controller.handler")["Properties"]
    return fn["Environment"]["Variables"]  # type: ignore[no-any-return]


def test_controller_settings_are_what_warmers_settings_reads(default: Any) -> None:
    from warmers.settings import ControllerSettings

    fn = only(default, "AWS::Lambda::Function", Handler="warmers.controller.handler")["Properties"]
    assert fn["ReservedConcurrentExecutions"] == 1 and fn["MemorySize"] == 512
    deps = next(
        rid
        for rid, layer in resources(default, "AWS::Lambda::LayerVersion").items()
        if "CompatibleArchitectures" in layer["Properties"]
    )
    assert fn["Layers"] == [{"Ref": deps}], "numpy comes from the deps layer"
    env = _controller_env(default)
    warmer = ref_of(default, "AWS::Lambda::Function", Handler="warmers.warmer.handler")
    assert env["PREHEAT_WARMER_FUNCTION"] == {"Ref": warmer}
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    settings = ControllerSettings.from_env(
        {**plain, "PREHEAT_LAMBDA_FUNCTION": "fn", "PREHEAT_WARMER_FUNCTION": "w"}
    )
    assert settings.pc_mode == "scheduled", "AAS owns the alias's capacity: the controller schedules on it"
    assert (settings.lambda_alias, settings.max_concurrency, settings.memory_mb) == ("live", 10, 2048)
    assert (settings.metrics_namespace, settings.metrics_service, settings.policy) == (
        "Preheat",
        "preheat",
        "preheat",
    )
    assert (settings.sagemaker_endpoint, settings.sagemaker_variant) == ("preheat-stand-in", "AllTraffic")
    only(default, "AWS::Events::Rule", ScheduleExpression="rate(1 minute)")


def test_controller_has_exactly_the_permissions_it_uses(default: Any) -> None:
    statements = _statements(default, role=_role_of(default, "warmers.controller.handler"))
    by_action: dict[str, list[dict[str, Any]]] = {}
    for st in statements:
        for a in _actions(st):
            by_action.setdefault(a, []).append(st)
    assert sorted(by_action) == sorted(
        [
            "cloudwatch:GetMetricData",
            "lambda:InvokeFunction",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScheduledActions",
            "application-autoscaling:PutScheduledAction",
            "application-autoscaling:RegisterScalableTarget",
            "sagemaker:CreateEndpointConfig",
            "sagemaker:DescribeEndpointConfig",
            "sagemaker:UpdateEndpoint",
            "sagemaker:DescribeEndpoint",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ]
    )
    warmer = ref_of(default, "AWS::Lambda::Function", Handler="warmers.warmer.handler")
    assert by_action["lambda:InvokeFunction"][0]["Resource"] == {"Fn::GetAtt": [warmer, "Arn"]}
    (put,) = by_action["application-autoscaling:PutScheduledAction"]
    tag_value = put["Condition"]["StringEquals"]["aws:ResourceTag/preheat:scalable-target"]
    target = only(default, "AWS::ApplicationAutoScaling::ScalableTarget", ServiceNamespace="lambda")
    assert {"Key": "preheat:scalable-target", "Value": tag_value} in target["Properties"]["Tags"]
    (create,) = by_action["sagemaker:CreateEndpointConfig"]
    assert "endpoint-config/preheat-stand-in*" in json.dumps(create["Resource"])
    (describe,) = by_action["sagemaker:DescribeEndpoint"]
    assert "endpoint/preheat-stand-in" in json.dumps(describe["Resource"])


def test_controller_direct_mode_manages_the_alias_itself(synth: Synth, outputs: BuildOutputs) -> None:
    from warmers.settings import ControllerSettings

    ctx = outputs.context(
        **{
            "lambda.warmStart": "none",
            "controller.pcMode": "direct",
            "controller.maxConcurrency": 4,
            "warmer.enabled": False,
            "sagemaker.enabled": False,
        }
    )
    template = synth(ctx)[1]
    env = {k: v for k, v in _controller_env(template).items() if isinstance(v, str)}
    settings = ControllerSettings.from_env({**env, "PREHEAT_LAMBDA_FUNCTION": "fn"})
    assert (settings.pc_mode, settings.max_concurrency, settings.warmer_function) == ("direct", 4, None)
    assert not resources(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    statements = _statements(template, role=_role_of(template, "warmers.controller.handler"))
    actions = {a for s in statements for a in _actions(s)}
    assert {"lambda:PutProvisionedConcurrencyConfig", "lambda:GetProvisionedConcurrencyConfig",
            "lambda:DeleteProvisionedConcurrencyConfig"} <= actions  # fmt: skip
    assert not any(a.startswith(("application-autoscaling:", "sagemaker:")) for a in actions)
    pc = next(s for s in statements if "lambda:PutProvisionedConcurrencyConfig" in _actions(s))
    assert json.dumps(pc["Resource"]).endswith(':live"]]}')
    invoke = next(s for s in statements if "lambda:InvokeFunction" in _actions(s))
    assert invoke["Resource"] == {"Ref": ref_of(template, "AWS::Lambda::Alias", Name="live")}, (
        "no warmer: ping the alias"
    )


def test_warmers_can_be_turned_off(synth: Synth, outputs: BuildOutputs) -> None:
    template = synth(
        outputs.context(**{"warmer.enabled": False, "controller.enabled": False, "sagemaker.enabled": False})
    )[1]
    handlers = {f["Properties"].get("Handler") for f in resources(template, "AWS::Lambda::Function").values()}
    assert handlers == {"functions.inference.handler.handler"}
    assert not resources(template, "AWS::Events::Rule")


# -- the cache table ---------------------------------------------------------------------------------


def test_cache_table(default: Any) -> None:
    table = only(default, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "key", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "key", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    inference_role = _role_of(default, "functions.inference.handler.handler")
    table_id = ref_of(default, "AWS::DynamoDB::Table")
    (grant,) = [
        s
        for s in _statements(default, role=inference_role)
        if any(a.startswith("dynamodb:") for a in _actions(s))
    ]
    assert sorted(_actions(grant)) == ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"]
    assert grant["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}


# -- dashboard and alarms ----------------------------------------------------------------------------


def _dashboard_body(template: Any) -> dict[str, Any]:
    body = only(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]
    # The body is a Fn::Join of literal text and references: render references as placeholders.
    parts = body["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return json.loads(text)  # type: ignore[no-any-return]


def test_dashboard_shows_cold_and_warm_latency_as_separate_lines(default: Any) -> None:
    widgets = _dashboard_body(default)["widgets"]
    titles = [w["properties"].get("title", "") for w in widgets]
    cold = widgets[titles.index("Cold-start latency (ms), start=cold")]["properties"]
    warm = widgets[titles.index("Warm latency (ms), start=warm")]["properties"]
    for props, start in ((cold, "cold"), (warm, "warm")):
        lines = props["metrics"]
        assert len(lines) == 3
        for line, p in zip(lines, ("p50", "p90", "p99"), strict=True):
            assert line[0:6] == ["Preheat", "Latency", "service", "preheat", "start", start]
            assert line[6]["stat"] == p
    rate = widgets[titles.index("Cold-start rate (% of requests)")]["properties"]["metrics"]
    expression = next(m[0]["expression"] for m in rate if isinstance(m[0], dict) and "expression" in m[0])
    assert expression.startswith("100 * FILL(coldstarts, 0) / (")
    expected = {
        "Init duration (ms)", "Provisioned concurrency utilization (Maximum)", "Provisioned vs spillover invocations",
        "Cache hit rate (%)", "Errors", "SageMaker preheat-stand-in: latency (ms)",
        "SageMaker cold starts: model setup time (ms)", "SageMaker provisioned concurrency", "SageMaker errors", "Alarms",
    }  # fmt: skip
    assert expected <= set(titles)
    cache = [_line(m) for m in widgets[titles.index("Cache hit rate (%)")]["properties"]["metrics"]]
    assert ("Preheat", "CacheHits", {"service": "preheat", "level": "memory"}) in [c[:3] for c in cache]
    assert ("Preheat", "CacheMisses", {"service": "preheat", "level": "dynamodb"}) in [c[:3] for c in cache]
    assert ("Preheat", "CacheHits", {"service": "preheat", "level": "redis"}) in [c[:3] for c in cache]
    util = json.dumps(
        widgets[titles.index("Provisioned concurrency utilization (Maximum)")]["properties"]["metrics"]
    )
    assert (
        '"AWS/Lambda", "ProvisionedConcurrencyUtilization", "FunctionName", "TOKEN", "Resource", "TOKEN:live"'
        in util
    )
    assert '"stat": "Maximum"' in util
    sm = json.dumps(
        widgets[titles.index("SageMaker cold starts: model setup time (ms)")]["properties"]["metrics"]
    )
    assert (
        '"AWS/SageMaker", "ModelSetupTime", "EndpointName", "preheat-stand-in", "VariantName", "AllTraffic"'
        in sm
    )


def _line(metric: list[Any]) -> tuple[Any, ...]:
    """A dashboard metric array [ns, name, k1, v1, ..., {options}] as (ns, name, {dims}, options)."""
    options = metric[-1] if isinstance(metric[-1], dict) else {}
    fields = metric[:-1] if options else metric
    if len(fields) < 2:
        return (None, None, {}, options)
    return (fields[0], fields[1], dict(zip(fields[2::2], fields[3::2], strict=True)), options)


def test_alarms_on_cold_start_rate_and_p99(default: Any) -> None:
    rate = only(default, "AWS::CloudWatch::Alarm", AlarmName="Preheat-ColdStartRate")["Properties"]
    assert rate["Threshold"] == 5.0
    assert rate["ComparisonOperator"] == "GreaterThanThreshold"
    assert (rate["EvaluationPeriods"], rate["DatapointsToAlarm"]) == (3, 3)
    assert rate["TreatMissingData"] == "notBreaching"
    expression = next(m for m in rate["Metrics"] if "Expression" in m)
    assert expression["Expression"].startswith("100 * FILL(coldstarts, 0) / (FILL(inv_cold, 0) + ")
    inputs = {m["Id"]: m for m in rate["Metrics"] if "MetricStat" in m}
    assert inputs["coldstarts"]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "service", "Value": "preheat"},
        {"Name": "start", "Value": "cold"},
    ]
    assert all(m["ReturnData"] is False for m in inputs.values())
    for name, start, threshold in (("WarmLatencyP99", "warm", 100.0), ("ColdLatencyP99", "cold", 3000.0)):
        alarm = only(default, "AWS::CloudWatch::Alarm", AlarmName=f"Preheat-{name}")["Properties"]
        assert alarm["Threshold"] == threshold
        (query,) = alarm["Metrics"]
        stat = query["MetricStat"]
        assert stat["Stat"] == "p99" and stat["Metric"]["MetricName"] == "Latency"
        assert {"Name": "start", "Value": start} in stat["Metric"]["Dimensions"]
    cold = only(default, "AWS::CloudWatch::Alarm", AlarmName="Preheat-ColdLatencyP99")["Properties"]
    assert "AlarmActions" not in cold


def test_alarm_topic(synth: Synth, outputs: BuildOutputs) -> None:
    topic = "arn:aws:sns:us-east-1:111122223333:oncall"
    template = synth(
        outputs.context(
            **{"dashboard.alarms": {"topicArn": topic, "warmP99Ms": 50}, "sagemaker.enabled": False}
        )
    )[1]
    warm = only(template, "AWS::CloudWatch::Alarm", AlarmName="Preheat-WarmLatencyP99")["Properties"]
    assert warm["AlarmActions"] == [topic] and warm["OKActions"] == [topic] and warm["Threshold"] == 50


def test_moto_variant_drops_only_what_moto_cannot_create(synth: Synth, outputs: BuildOutputs) -> None:
    template = synth(outputs.context(target="moto"))[1]
    for kind in ("AWS::Lambda::Alias", "AWS::Lambda::Url", "AWS::ApplicationAutoScaling::ScalableTarget"):
        assert not resources(template, kind), kind
    fn = only(template, "AWS::Lambda::Function", Handler="functions.inference.handler.handler")["Properties"]
    assert "SnapStart" not in fn and len(fn["Layers"]) == 2
    for kind in (
        "AWS::DynamoDB::Table",
        "AWS::Events::Rule",
        "AWS::SageMaker::EndpointConfig",
        "AWS::CloudWatch::Dashboard",
    ):
        assert resources(template, kind), kind
    image = only(template, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["Image"]
    assert isinstance(image, str) and ".dkr.ecr." in image, "no Docker image asset for moto"


def _staged_code(stack: Any, template: Any, handler: str) -> Path:
    fn = only(template, "AWS::Lambda::Function", Handler=handler)["Properties"]
    asset_hash = fn["Code"]["S3Key"].removesuffix(".zip")
    return Path(stack.node.root.outdir) / f"asset.{asset_hash}"


# Of functions/, the warmer and controller carry only these: the shared error, env parser, lazy
# exports (warmers/__init__.py uses them) and EMF writer.
WARMERS_FUNCTIONS = [
    "functions/__init__.py",
    "functions/envvars.py",
    "functions/errors.py",
    "functions/lazy.py",
    "functions/metrics/__init__.py",
    "functions/metrics/emf.py",
]
# What no function's code may import at all, and what only the inference function's layers provide.
NOWHERE = ["infra", "layers", "scripts", "tests"]
INFERENCE_LAYERS = ["msgspec", "onnxruntime", "fastapi", "mangum", "tokenizers"]


@pytest.mark.parametrize(
    ("handler", "modules", "absent", "refused"),
    [
        (
            "warmers.warmer.handler",
            ["warmers.warmer"],
            ["warmers/simulator", "functions/inference", "functions/cache", "infra", "tests"],
            [*NOWHERE, *INFERENCE_LAYERS, "numpy"],  # the warmer has no layer: boto3 only
        ),
        (
            "warmers.controller.handler",
            ["warmers.controller"],
            ["warmers/simulator", "functions/inference", "functions/cache", "infra"],
            [*NOWHERE, *INFERENCE_LAYERS],  # its deps layer is there for numpy
        ),
        (
            "functions.inference.handler.handler",
            ["functions.inference.runtime", "functions.inference.adapters", "functions.cache"],
            ["warmers", "infra", "scripts", "functions/baselines", "functions/sagemaker", ".venv", "build"],
            NOWHERE,
        ),
    ],
)
def test_function_code_assets_hold_what_the_handler_imports(
    synth: Synth, outputs: BuildOutputs, handler: str, modules: list[str], absent: list[str], refused: list[str]
) -> None:
    """Each zip is importable on its own (plus the layers' packages), and carries nothing else."""
    import subprocess
    import sys

    stack, template = synth(outputs.context())
    staged = _staged_code(stack, template, handler)
    for path in absent:
        assert not (staged / path).exists(), f"{path} should not be in {handler}'s code"
    if handler.startswith("warmers."):
        shipped = sorted(str(p.relative_to(staged)) for p in (staged / "functions").rglob("*") if p.is_file())
        assert shipped == WARMERS_FUNCTIONS
    # (The inference handler itself loads a model when imported: its parts are imported instead.)
    # Packages the function's runtime lacks are refused, though this interpreter has them; every module
    # of the repository's packages that gets imported must come from the zip.
    probe = (
        "import importlib, sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.partition('.')[0] in {refused!r}:\n"
        f"            raise ModuleNotFoundError(name + ' is not in the runtime of {handler}')\n"
        "sys.meta_path.insert(0, Refuse())\n"
        f"sys.path.insert(0, {str(staged)!r})\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "for name, module in list(sys.modules.items()):\n"
        "    if name.partition('.')[0] in ('functions', 'warmers'):\n"
        f"        assert (getattr(module, '__file__', None) or '').startswith({str(staged)!r}), name\n"
    )
    # The function's own environment (references stand in as placeholders): modules read it at import.
    variables = only(template, "AWS::Lambda::Function", Handler=handler)["Properties"]["Environment"]["Variables"]
    env = {**os.environ, **{k: v if isinstance(v, str) else "placeholder" for k, v in variables.items()}}
    # -B: both warmers share one staged directory, which must stay as the zip has it.
    proc = subprocess.run([sys.executable, "-I", "-B", "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]


# -- the function's code ------------------------------------------------------------------------------


def test_function_code_ships_bytecode_only_when_built_from_these_sources(
    synth: Synth, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import sys

    from aws_cdk.assertions import Annotations

    from layers import function_code

    def repo(name: str) -> BuildOutputs:
        root = tmp_path_factory.mktemp(name)
        shutil.copytree(ROOT / "functions", root / "functions", ignore=shutil.ignore_patterns("__pycache__"))
        built = make_build_outputs(root / "build")
        return dataclasses.replace(built, root=root)

    def staged_handlers(stack: Any) -> list[Path]:
        outdir = Path(stack.node.root.outdir)
        return sorted(outdir.glob("asset.*/functions/inference/handler.py"))

    plain = repo("plain")
    stack, _ = synth(plain.context(**{"sagemaker.enabled": False}), root=plain.root)
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("without bytecode"))
    assert warnings, "synth should say that the code ships without bytecode"
    (handler,) = staged_handlers(stack)
    assert not (handler.parent / "__pycache__").exists()

    compiled = repo("compiled")
    function_code.build(compiled.root, Path(sys.executable))
    stack, _ = synth(compiled.context(**{"sagemaker.enabled": False}), root=compiled.root)
    assert not Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("without bytecode"))
    (handler,) = staged_handlers(stack)
    assert (handler.parent / "__pycache__" / f"handler.{sys.implementation.cache_tag}.pyc").is_file()
    assert not (handler.parents[2] / "functions" / "sagemaker").exists()
