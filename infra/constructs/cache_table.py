"""The shared cache tier: a DynamoDB table the inference function reads and writes."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

# The cache contract (functions' PREHEAT_CACHE_TABLE): partition key `key` (String), TTL `expires_at`.
PARTITION_KEY = "key"
TTL_ATTRIBUTE = "expires_at"
# What the runtime's cache calls (functions/cache/dynamodb.py): batched reads and writes, nothing else.
CACHE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")


@dataclass(frozen=True)
class CacheTableProps:
    point_in_time_recovery: bool = True
    # Cached answers can always be recomputed, so the table goes with the stack.
    removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.DESTROY


class CacheTable(Construct):
    """On-demand billing (a cache sees bursts, not steady load), TTL on `expires_at`, PITR on."""

    def __init__(self, scope: Construct, id: str, props: CacheTableProps) -> None:
        super().__init__(scope, id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=props.point_in_time_recovery
            ),
            removal_policy=props.removal_policy,
        )

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def grant_cache(self, grantee: iam.IGrantable) -> None:
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(CACHE_ACTIONS), resource_arns=[self.table.table_arn]
        )
