"""Deploy smoke test: `cdk bootstrap` and `cdk deploy` of the moto variant into a fresh moto_server on
127.0.0.1, then boto3 checks that every part exists as configured.

moto's CloudFormation cannot create Docker image assets, aliases, Function URLs or Application Auto
Scaling resources (../shared/notes/aws-local.md): `preheat:target=moto` leaves those out, the rest is
the stack a user deploys. Everything else (assets to S3, layers, IAM, functions, rules, table,
SageMaker model/config/endpoint, dashboard) goes through the real CDK CLI and CloudFormation API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.conftest import ROOT, STAND_IN, BuildOutputs
from tests.infra.moto_server import MotoServer
from tests.infra.test_synth_cli import cdk_cli
from tests.infra.test_synth_cli import env as cli_env

pytestmark = pytest.mark.slow

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def aws_env(url: str) -> dict[str, str]:
    env = cli_env()
    for key in list(env):
        if key.startswith("AWS_"):
            del env[key]
    port = url.rsplit(":", 1)[1]
    return {
        **env,
        "AWS_ENDPOINT_URL": url,
        # The CDK CLI hands CloudFormation the template's S3 URL on this endpoint.
        "AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION": f"http://localhost:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }


@pytest.fixture(scope="module")
def deployed(
    moto: MotoServer, outputs: BuildOutputs, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    env = aws_env(moto.url)
    context = [
        *outputs.cli_context(),
        "-c", "preheat:target=moto",
        "-c", f"preheat:account={ACCOUNT}",
        "-c", f"preheat:region={REGION}",
    ]  # fmt: skip
    common = [
        "--no-notices",
        "--app",
        f"{sys.executable} -m infra.app",
        "--output",
        str(tmp_path_factory.mktemp("cdk.out")),
    ]
    timings = {}
    for name, args in (
        ("bootstrap", ["bootstrap", f"aws://{ACCOUNT}/{REGION}"]),
        ("deploy", ["deploy", "--require-approval", "never"]),
    ):
        started = time.monotonic()
        proc = subprocess.run(
            [*cdk_cli(), *args, *common, *context],
            cwd=tmp_path_factory.getbasetemp(),
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        timings[name] = time.monotonic() - started
        assert proc.returncode == 0, f"cdk {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}"
    print(f"\ncdk bootstrap {timings['bootstrap']:.1f} s, cdk deploy {timings['deploy']:.1f} s (moto_server)")
    # moto's CloudFormation does not report stack outputs: the checks find resources by listing.
    return {"url": moto.url}


def client(deployed: dict[str, Any], service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=deployed["url"],
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def cache_table(deployed: dict[str, Any]) -> str:
    (name,) = client(deployed, "dynamodb").list_tables()["TableNames"]
    return name  # type: ignore[no-any-return]


def test_stack_created(deployed: dict[str, Any]) -> None:
    cfn = client(deployed, "cloudformation")
    (stack,) = cfn.describe_stacks(StackName="Preheat")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    resources = cfn.describe_stack_resources(StackName="Preheat")["StackResources"]
    kinds = {r["ResourceType"] for r in resources if "ResourceType" in r}
    expected = {
        "AWS::Lambda::Function", "AWS::Lambda::LayerVersion", "AWS::DynamoDB::Table", "AWS::Events::Rule",
        "AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint",
        "AWS::CloudWatch::Dashboard", "AWS::IAM::Role", "AWS::IAM::Policy",
    }  # fmt: skip
    assert expected <= kinds


def test_functions_and_layers_exist(deployed: dict[str, Any]) -> None:
    lam = client(deployed, "lambda")
    functions = {f["Handler"]: f for f in lam.list_functions()["Functions"]}
    assert set(functions) == {
        "functions.inference.handler.handler",
        "warmers.warmer.handler",
        "warmers.controller.handler",
    }
    inference = functions["functions.inference.handler.handler"]
    assert (inference["Runtime"], inference["MemorySize"], inference["Timeout"]) == ("python3.12", 2048, 30)
    env = inference["Environment"]["Variables"]
    assert env["PREHEAT_CACHE_TABLE"] == cache_table(deployed)
    assert env["PREHEAT_MODEL_DIR"] == "/opt/model"
    layers = {layer["LatestMatchingVersion"]["Description"] for layer in lam.list_layers()["Layers"]}
    assert any(d.startswith(f"model {STAND_IN} (text-embedding), id ") for d in layers)
    assert any("dependencies for x86_64" in d for d in layers)
    warmer = functions["warmers.warmer.handler"]["Environment"]["Variables"]
    assert warmer["PREHEAT_WARM_FUNCTION"] == inference["FunctionName"]
    assert "PREHEAT_WARM_QUALIFIER" not in warmer, "no alias in the moto variant: the function itself"
    controller = functions["warmers.controller.handler"]["Environment"]["Variables"]
    assert (
        controller["PREHEAT_PC_MODE"] == "off"
        and controller["PREHEAT_LAMBDA_FUNCTION"] == inference["FunctionName"]
    )


def test_cache_table_exists(deployed: dict[str, Any]) -> None:
    ddb = client(deployed, "dynamodb")
    table = ddb.describe_table(TableName=cache_table(deployed))["Table"]
    assert table["KeySchema"] == [{"AttributeName": "key", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_schedules_exist(deployed: dict[str, Any]) -> None:
    events = client(deployed, "events")
    rules = {r["ScheduleExpression"]: r for r in events.list_rules()["Rules"]}
    assert set(rules) == {"rate(5 minutes)", "rate(1 minute)"}
    lam = client(deployed, "lambda")
    handlers = {f["FunctionArn"]: f["Handler"] for f in lam.list_functions()["Functions"]}
    for expression, handler in (
        ("rate(5 minutes)", "warmers.warmer.handler"),
        ("rate(1 minute)", "warmers.controller.handler"),
    ):
        (target,) = events.list_targets_by_rule(Rule=rules[expression]["Name"])["Targets"]
        assert handlers[target["Arn"]] == handler


def test_sagemaker_endpoint_config_and_endpoint_exist(deployed: dict[str, Any]) -> None:
    sm = client(deployed, "sagemaker")
    (config,) = sm.list_endpoint_configs()["EndpointConfigs"]
    variant = sm.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"])[
        "ProductionVariants"
    ][0]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": 3072,
        "MaxConcurrency": 10,
        "ProvisionedConcurrency": 1,
    }
    assert len(sm.list_endpoints()["Endpoints"]) == 1
    (model,) = sm.list_models()["Models"]
    container = sm.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]
    assert container["ModelDataUrl"].startswith("s3://")  # the model data asset was uploaded by cdk deploy
    s3 = client(deployed, "s3")
    bucket, key = container["ModelDataUrl"][5:].split("/", 1)
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_dashboard_exists_with_the_definition(deployed: dict[str, Any]) -> None:
    cw = client(deployed, "cloudwatch")
    name = "preheat"  # preheat.dashboard.name's default
    body = json.loads(cw.get_dashboard(DashboardName=name)["DashboardBody"])
    titles = [w["properties"].get("title") for w in body["widgets"]]
    assert "Cold-start latency (ms), start=cold" in titles and "Warm latency (ms), start=warm" in titles
    lam = client(deployed, "lambda")
    inference = next(
        f for f in lam.list_functions()["Functions"] if f["Handler"] == "functions.inference.handler.handler"
    )
    assert inference["FunctionName"] in json.dumps(body), "references resolved to the deployed function"
