"""The one IAM role a local deployment needs: created on first use, read back after."""

from __future__ import annotations

import json
from typing import Any


def service_role(iam: Any, name: str, service: str) -> str:
    """The ARN of role `name` that `service` (e.g. lambda.amazonaws.com) may assume, created if missing."""
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    try:
        arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust, separators=(",", ":")))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    return arn
