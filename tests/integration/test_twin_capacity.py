"""Provisioned concurrency when the twin's account concurrency (max_instances) is all in use: the
config stays IN_PROGRESS and is allocated once an instance is free, as Lambda allocates it as capacity
allows; it never sticks at FAILED for want of a free moment."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.twin.client import TwinClient
from scripts.twin.config import FunctionSpec, TwinConfig
from tests.support.twin import ROOT, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

H = "tests.support.twin_handlers"


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinClient]:
    config = TwinConfig(
        functions=(
            FunctionSpec("busy", f"{H}.sleep", ROOT, url_qualifier=None),
            FunctionSpec("wanted", f"{H}.echo", ROOT, url_qualifier=None),
        ),
        max_instances=1,
        state_dir=tmp_path_factory.mktemp("twin"),
    )
    with running(config) as client:
        yield client


def test_provisioned_concurrency_waits_for_a_free_slot_then_becomes_ready(twin: TwinClient) -> None:
    lam = twin.boto3_client("lambda", retries={"total_max_attempts": 1}, read_timeout=60)
    answered: list[Any] = []
    # The account's one slot, busy for 4 s.
    sleeper = threading.Thread(
        target=lambda: answered.append(
            lam.invoke(FunctionName="busy", Qualifier="live", Payload=json.dumps({"seconds": 4}).encode())
        )
    )
    sleeper.start()
    wait_for(lambda: any(i["state"] == "busy" for f in twin.functions() if f["name"] == "busy"
                         for i in f["instances"]), timeout=30, what="the busy instance")
    try:
        lam.put_provisioned_concurrency_config(FunctionName="wanted", Qualifier="live", ProvisionedConcurrentExecutions=1)
        status = lam.get_provisioned_concurrency_config(FunctionName="wanted", Qualifier="live")
        assert status["Status"] == "IN_PROGRESS", status  # no room yet, and not FAILED for it
        sleeper.join(30)
        assert answered and answered[0]["StatusCode"] == 200
        ready = wait_for(
            lambda: (c := lam.get_provisioned_concurrency_config(FunctionName="wanted", Qualifier="live"))["Status"]
            in ("READY", "FAILED") and c,
            timeout=60,
            what="provisioned concurrency allocated once the slot is free",
        )
        assert ready["Status"] == "READY", ready
        kinds = {f["name"]: [i["kind"] for i in f["instances"]] for f in twin.functions()}
        assert kinds["wanted"] == ["provisioned-concurrency"]  # the idle on-demand one made room for it
    finally:
        lam.delete_provisioned_concurrency_config(FunctionName="wanted", Qualifier="live")

