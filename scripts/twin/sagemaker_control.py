"""The SageMaker control plane of the twin: moto holds the models, endpoint configs and endpoints
(CreateModel, CreateEndpointConfig, CreateEndpoint reach it as any other call does); this reads them
back as what the twin runs, registers the twin config's endpoints, and stands in for UpdateEndpoint's
config swap, which moto lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scripts.aws_roles import service_role
from scripts.twin.sagemaker_config import LOCAL_IMAGE, EndpointSpec

log = logging.getLogger("preheat.twin")
ROLE = "preheat-twin-sagemaker"


class NotServable(Exception):
    """The endpoint exists but the twin cannot run it (the message says why)."""


@dataclass(frozen=True)
class VariantSpec:
    name: str
    model_name: str
    memory_mb: int
    max_concurrency: int
    provisioned: int
    weight: float
    environment: Mapping[str, str]
    model_data_url: str | None
    image: str | None


@dataclass(frozen=True)
class EndpointDefinition:
    name: str
    arn: str
    config_name: str
    status: str
    variants: tuple[VariantSpec, ...]


class ControlPlane:
    """boto3 clients of moto's SageMaker and S3, and what the twin asks of them (blocking: run in a thread)."""

    def __init__(self, region: str, moto_url: str) -> None:
        self.region = region
        self.moto_url = moto_url
        self._clients: tuple[Any, Any] | None = None

    def register(self, specs: Iterable[EndpointSpec]) -> None:
        """Create the configured endpoints in moto (blocking; run in a thread)."""
        sm, _ = self.clients()
        import boto3

        iam = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=self.region).client("iam", endpoint_url=self.moto_url)
        role = service_role(iam, ROLE, "sagemaker.amazonaws.com")
        for spec in specs:
            description = spec.registered()
            try:
                sm.create_model(**description.create_model_request(LOCAL_IMAGE, role))
                sm.create_endpoint_config(**description.create_endpoint_config_request())
                sm.create_endpoint(**description.create_endpoint_request())
            except Exception as exc:
                log.warning("could not create endpoint %s in moto: %s", spec.name, exc)

    def clients(self) -> tuple[Any, Any]:
        if self._clients is None:
            import boto3

            session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                            region_name=self.region)
            self._clients = (session.client("sagemaker", endpoint_url=self.moto_url),
                             session.client("s3", endpoint_url=self.moto_url))
        return self._clients

    def s3(self) -> Any:
        return self.clients()[1]

    def describe(self, name: str) -> EndpointDefinition | None:
        """The endpoint, its config and its models as moto has them; None if there is no such endpoint."""
        sm, _ = self.clients()
        try:
            described = sm.describe_endpoint(EndpointName=name)
        except sm.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ValidationError",
                                                             "ResourceNotFound"):
                return None
            raise
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        variants = []
        for pv in config["ProductionVariants"]:
            serverless = pv.get("ServerlessConfig")
            if not serverless:
                raise NotServable(
                    f"variant {pv['VariantName']} of endpoint {name} is instance-based; the twin runs serverless "
                    "variants (ServerlessConfig) only")
            model = sm.describe_model(ModelName=pv["ModelName"])
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            variants.append(VariantSpec(
                name=pv["VariantName"], model_name=pv["ModelName"], memory_mb=int(serverless["MemorySizeInMB"]),
                max_concurrency=int(serverless["MaxConcurrency"]),
                provisioned=int(serverless.get("ProvisionedConcurrency") or 0),
                weight=float(pv.get("InitialVariantWeight", 1.0)),
                environment=dict(container.get("Environment") or {}),
                model_data_url=container.get("ModelDataUrl"), image=container.get("Image"),
            ))
        return EndpointDefinition(name, described["EndpointArn"], described["EndpointConfigName"],
                                  described.get("EndpointStatus", "InService"), tuple(variants))

    def swap_config(self, name: str, config: str) -> str:
        """Point the endpoint at `config` in moto (which has no UpdateEndpoint): delete it and create
        it again with the same name (hence the same ARN) and tags."""
        sm, _ = self.clients()
        try:
            described = sm.describe_endpoint(EndpointName=name)
        except sm.exceptions.ClientError as exc:
            raise LookupError(exc.response.get("Error", {}).get("Message", str(exc))) from None
        if described.get("EndpointStatus") != "InService":
            raise LookupError(f'Cannot update in-progress endpoint "{described["EndpointArn"]}".')
        try:
            sm.describe_endpoint_config(EndpointConfigName=config)
        except sm.exceptions.ClientError as exc:
            raise LookupError(exc.response.get("Error", {}).get("Message", str(exc))) from None
        tags = sm.list_tags(ResourceArn=described["EndpointArn"]).get("Tags", [])
        sm.delete_endpoint(EndpointName=name)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config, **({"Tags": tags} if tags else {}))
        return str(described["EndpointArn"])
