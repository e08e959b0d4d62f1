"""`preheat deploy sagemaker`: the model, endpoint config and serverless endpoint through the SageMaker
Python SDK, for users who deploy without CDK.

Both paths build from one `EndpointConfig` (functions/sagemaker/endpoint.py), so the SDK path and
the CDK construct produce the same configuration. Steps: pack the model directory into
build/sagemaker/model.tar.gz (files at the archive's root: SageMaker extracts it into /opt/ml/model),
write the image's build context to build/sagemaker/context/, upload the archive to S3, then create
the model (`sagemaker.model.Model.create`) and the endpoint config and endpoint
(`Session.endpoint_from_production_variants` with a `ServerlessInferenceConfig`), which is what
`Model.deploy` does, except that the variant keeps the description's name.

Where it deploys: the running local twin by default (its AWS endpoint; the twin then serves the
endpoint with real `serve` containers), or your AWS account with --aws (then --image-uri, an image
built from the context and pushed to ECR, and --role are required).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.inference.errors import ConfigError
from functions.sagemaker.endpoint import MEMORY_SIZES_MB, EndpointConfig
from layers import paths
from layers import sagemaker_artifacts as artifacts
from scripts.aws_roles import service_role

# Build outputs (the cross-issue contract; layers/paths.py will hold these once it exists).
LOCAL_ROLE = "preheat-sagemaker-execution"
LOCAL_IMAGE = "preheat-sagemaker:local"  # what the twin records; it runs `serve` from this checkout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="preheat-inference", help="endpoint name (the model is NAME-model)")
    parser.add_argument("--model", metavar="NAME|DIR",
                        help="a model name under build/models or a model directory (default: preheat.model in cdk.json)")
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)  # the flag before --model
    parser.add_argument("--memory", type=int, default=2048, choices=MEMORY_SIZES_MB, help="MemorySizeInMB")
    parser.add_argument("--max-concurrency", type=int, default=5, help="MaxConcurrency (1-200)")
    parser.add_argument("--provisioned", type=int, help="ProvisionedConcurrency (default: none)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="container environment (PREHEAT_* settings); repeat")
    parser.add_argument("--aws", action="store_true", help="deploy to your AWS account instead of the local twin")
    parser.add_argument("--image-uri", help="the serving image in ECR (required with --aws)")
    parser.add_argument("--role", help="the SageMaker execution role ARN (required with --aws)")
    parser.add_argument("--bucket", help="S3 bucket for model.tar.gz (default: preheat-sagemaker-ACCOUNT-REGION)")
    parser.add_argument("--region", default=None, help="AWS region (default: the twin's, or your AWS config's)")
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat"), help="where the running twin is")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the endpoint to be InService")
    parser.add_argument("--context-only", action="store_true",
                        help="only write build/sagemaker/model.tar.gz and the docker build context")


@dataclass(frozen=True)
class Deployed:
    endpoint: EndpointConfig
    model_data_url: str
    image_uri: str
    role_arn: str
    endpoint_arn: str


# --- the SDK path ----------------------------------------------------------------------------------


def sdk_session(boto_session: Any, endpoint_url: str | None = None) -> Any:
    """A sagemaker.Session whose clients all use `endpoint_url` (the twin, moto) when given."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker.session import Session

    kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
    session = Session(
        boto_session=boto_session,
        sagemaker_client=boto_session.client("sagemaker", **kwargs),
        sagemaker_runtime_client=boto_session.client("sagemaker-runtime", **kwargs),
        sagemaker_metrics_client=boto_session.client("sagemaker-metrics", **kwargs),
    )
    session.s3_client = boto_session.client("s3", **kwargs)
    session.s3_resource = boto_session.resource("s3", **kwargs)
    return session


def upload_model(session: Any, tarball: Path, bucket: str, name: str) -> str:
    s3 = session.s3_client
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:
        region = session.boto_region_name
        config = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **config)
    url: str = session.upload_data(str(tarball), bucket=bucket, key_prefix=f"preheat/{name}")
    return url


def deploy(endpoint: EndpointConfig, session: Any, *, image_uri: str, role_arn: str, model_data_url: str,
           wait: bool = True, poll_s: float = 30.0) -> Deployed:
    """Create the model, endpoint config and endpoint through the SDK, as `Model.deploy` does. Waiting
    polls DescribeEndpoint every `poll_s` (the SDK's own wait sleeps 30 s before its first look)."""
    from sagemaker.model import Model
    from sagemaker.serverless.serverless_inference_config import ServerlessInferenceConfig
    from sagemaker.session import production_variant

    endpoint.validate()
    serverless = ServerlessInferenceConfig(
        memory_size_in_mb=endpoint.memory_mb,
        max_concurrency=endpoint.max_concurrency,
        provisioned_concurrency=endpoint.provisioned_concurrency,
    )
    model = Model(image_uri=image_uri, model_data=model_data_url, role=role_arn, env=dict(endpoint.environment),
                  name=endpoint.model_name, sagemaker_session=session)
    model.create(serverless_inference_config=serverless)
    variant = production_variant(  # type: ignore[no-untyped-call]
        model_name=endpoint.model_name, variant_name=endpoint.variant_name,
        serverless_inference_config=serverless._to_request_dict(),  # type: ignore[no-untyped-call]
    )
    session.endpoint_from_production_variants(name=endpoint.name, production_variants=[variant], wait=False)
    if wait:
        session.wait_for_endpoint(endpoint.name, poll=poll_s)
    arn = session.sagemaker_client.describe_endpoint(EndpointName=endpoint.name)["EndpointArn"]
    return Deployed(endpoint, model_data_url, image_uri, role_arn, arn)


def local_role(boto_session: Any, endpoint_url: str | None) -> str:
    iam = boto_session.client("iam", **({"endpoint_url": endpoint_url} if endpoint_url else {}))
    return service_role(iam, LOCAL_ROLE, "sagemaker.amazonaws.com")


def endpoint_from_args(args: argparse.Namespace) -> EndpointConfig:
    env: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--env {item!r} must be KEY=VALUE")
        env[key] = value
    return EndpointConfig(
        name=args.name, memory_mb=args.memory, max_concurrency=args.max_concurrency,
        provisioned_concurrency=args.provisioned, environment=env,
    ).validate()


def run(args: argparse.Namespace) -> int:
    import boto3
    from rich.console import Console

    from infra.config import ConfigError as StackConfigError
    from layers.model_requests import INVOCATIONS, ModelRequests
    from scripts.twin.models import chosen_model
    from scripts.twin.state import read_state

    console = Console()
    root = Path.cwd()
    try:
        config, model = chosen_model(str(args.model_dir.resolve()) if args.model_dir else args.model)
        endpoint = endpoint_from_args(args)
        tarball = config.sagemaker.model_data
        with console.status(f"packing {model.describe()} from {model.directory} into {tarball}…"):
            artifacts.pack_model(model.directory, tarball)
            context = artifacts.write_context(paths.SAGEMAKER_CONTEXT, model.directory)
    except (ConfigError, StackConfigError) as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    console.print(f"model  {model.describe()}: {_shown(tarball, root)} ({tarball.stat().st_size / 1e6:.1f} MB)",
                  highlight=False)
    console.print(f"image  docker build -t preheat-sagemaker {_shown(context, root)}   "
                  f"(--target baked: the model in the image)", highlight=False)
    if args.context_only:
        return 0
    endpoint_url: str | None = None
    if args.aws:
        if not args.image_uri or not args.role:
            console.print("[red]--aws needs --image-uri (the image built from the context, pushed to ECR) and --role[/]")
            return 2
        boto_session = boto3.session.Session(region_name=args.region)
    else:
        twin = read_state(args.state_dir)
        if twin is None:
            console.print(f"[red]no twin is running in {args.state_dir}[/]: `preheat up` first, or pass --aws")
            return 2
        endpoint_url = twin.endpoint
        boto_session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                             region_name=args.region or twin.region)
    session = sdk_session(boto_session, endpoint_url)
    account = boto_session.client("sts", **({"endpoint_url": endpoint_url} if endpoint_url else {})) \
        .get_caller_identity()["Account"]
    bucket = args.bucket or f"preheat-sagemaker-{account}-{boto_session.region_name}"
    with console.status(f"uploading to s3://{bucket}/preheat/{endpoint.name}/…"):
        model_data_url = upload_model(session, tarball, bucket, endpoint.name)
    role = args.role or local_role(boto_session, endpoint_url)
    with console.status(f"creating model, endpoint config and endpoint {endpoint.name} (SageMaker SDK)…"):
        deployed = deploy(endpoint, session, image_uri=args.image_uri or LOCAL_IMAGE, role_arn=role,
                          model_data_url=model_data_url, wait=not args.no_wait, poll_s=30.0 if args.aws else 0.2)
    console.print(f"[green]deployed[/] {deployed.endpoint_arn}")
    console.print(f"  memory {endpoint.memory_mb} MB, max concurrency {endpoint.max_concurrency}, provisioned "
                  f"{endpoint.provisioned_concurrency or 0}; model {model_data_url}", highlight=False)
    where = f"endpoint_url='{endpoint_url}', " if endpoint_url else ""
    body = ModelRequests(model.manifest).sample(INVOCATIONS).json().decode()
    console.print("\ntry:", style="bold")
    console.print(f"  boto3.client('sagemaker-runtime', {where}region_name='{boto_session.region_name}')"
                  f".invoke_endpoint(EndpointName='{endpoint.name}', ContentType='application/json', "
                  f"Body='{body}')", soft_wrap=True, highlight=False)
    return 0


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
