"""The provisioned-concurrency controller Lambda: `warmers.controller.handler`.

Run every minute (an EventBridge schedule). Each run:
  1. reads the inference function's recent invocations and busy time per minute from its EMF
     metrics in CloudWatch (PREHEAT_METRICS_NAMESPACE, dimension service = PREHEAT_METRICS_SERVICE);
  2. replays the policy (PREHEAT_POLICY, the same library the simulator runs, in aws mode) over that
     history, minute by minute from the UTC midnight before it (so that the policy's own clocks
     follow the wall clock), and takes its decision for the current minute. Replaying makes the
     controller stateless: any instance, after any gap, decides the same;
  3. acts, within PREHEAT_MAX_CONCURRENCY: provisioned concurrency on the Lambda alias
     (PREHEAT_PC_MODE=direct or scheduled), SageMaker Serverless ProvisionedConcurrency, and the
     warmer's fan-out.
AWS errors are retried with backoff and then reported; the controller never raises. With
PREHEAT_DRY_RUN=true it decides and reports without acting.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from functions.metrics import emf
from warmers import actuators, clients
from warmers.history import History, floor_minute, read_history
from warmers.policies import make_policy
from warmers.policies.base import Decision, Observation, PolicyContext
from warmers.settings import ControllerSettings

SETTINGS = ControllerSettings.from_env()


def decide(settings: ControllerSettings, history: History) -> Decision:
    """The policy's decision for the minute after the history, replayed from midnight before it."""
    history = history.from_midnight()
    policy = make_policy(settings.policy)
    policy.reset(
        PolicyContext(
            mode="aws",
            memory_mb=np.array([float(settings.memory_mb)]),
            platform_keepalive_s=settings.platform_keepalive_min * 60.0,
            ping_hold_s=settings.warm_hold_ms / 1000.0,
            max_concurrency=settings.max_concurrency,
        )
    )
    invocations = history.invocations[None, :]
    busy = history.busy_s[None, :]
    decision = Decision.idle(1)
    for minute in range(history.minutes + 1):
        # As in the simulator's aws mode: the minute that just ended is not in CloudWatch yet.
        obs = Observation(
            minute=minute,
            visible=max(0, minute - 1),
            invocations=invocations,
            busy_s=busy,
            day_offset_min=history.day_offset_min,
        )
        decision = policy.decide(obs)
    return decision.bounded(settings.max_concurrency)


def handler(event: Any, context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        report = control(SETTINGS, _now(event))
    except Exception as exc:  # the last line of defence: report, never crash the schedule
        report = {"preheat": "controller", "error": {"code": type(exc).__name__, "message": str(exc)[:400]}}
    report["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    errors = (
        1 if "error" in report else sum(1 for a in report.get("actions", []) if a.get("action") == "error")
    )
    emf.emit(
        SETTINGS.namespace,
        SETTINGS.service,
        {
            "DesiredProvisionedConcurrency": report.get("decision", {}).get("provisioned", 0),
            "WarmupFanout": report.get("decision", {}).get("pings", 0),
            "ControllerErrors": errors,
        },
        properties={"policy": SETTINGS.policy},
    )
    print(json.dumps({"level": "INFO", "message": "controller run", **report}, default=str))
    return report


def control(settings: ControllerSettings, now: datetime) -> dict[str, Any]:
    report: dict[str, Any] = {"preheat": "controller", "policy": settings.policy, "at": now.isoformat()}
    try:
        history = read_history(
            clients.client("cloudwatch"),
            namespace=settings.metrics_namespace,
            service=settings.metrics_service,
            end=now,
            minutes=settings.history_minutes,
            backoff=settings.backoff,
        )
    except Exception as exc:
        # Without metrics there is nothing to decide on: leave every setting as it is.
        from warmers.retry import error_code

        report["error"] = {"code": "metrics_unavailable", "message": f"{error_code(exc)}: {exc}"[:400]}
        return report
    decision = decide(settings, history)
    provisioned, pings = int(decision.provisioned[0]), int(decision.pings[0])
    report["decision"] = {"provisioned": provisioned, "pings": pings, "max": settings.max_concurrency}
    report["history"] = {
        "minutes": history.minutes,
        "invocations": int(history.invocations.sum()),
        "last_hour": int(history.invocations[-60:].sum()),
    }
    if settings.dry_run:
        report["actions"] = []
        return report
    report["actions"] = [a.as_dict() for a in act(settings, provisioned, pings, now)]
    return report


def act(
    settings: ControllerSettings, provisioned: int, pings: int, now: datetime
) -> list[actuators.ActionResult]:
    results = []
    if settings.lambda_function and settings.lambda_alias and settings.pc_mode != "off":
        if settings.pc_mode == "direct":
            results.append(
                actuators.lambda_pc_direct(
                    clients.client("lambda"),
                    settings.lambda_function,
                    settings.lambda_alias,
                    provisioned,
                    settings.max_concurrency,
                    settings.backoff,
                )
            )
        else:
            results.append(
                actuators.lambda_pc_scheduled(
                    clients.client("application-autoscaling"),
                    settings.lambda_function,
                    settings.lambda_alias,
                    provisioned,
                    settings.max_concurrency,
                    settings.backoff,
                    now=now,
                )
            )
    if settings.sagemaker_endpoint:
        results.append(
            actuators.sagemaker_pc(
                clients.client("sagemaker"),
                settings.sagemaker_endpoint,
                settings.sagemaker_variant,
                provisioned,
                settings.max_concurrency,
                settings.backoff,
                now=now,
            )
        )
    if pings > 0 and settings.lambda_function:
        results.append(
            actuators.warm(
                clients.client(
                    "lambda",
                    read_timeout_s=settings.warm_timeout_s,
                    max_pool=max(10, settings.max_concurrency),
                ),
                function=settings.lambda_function,
                qualifier=settings.lambda_alias,
                fanout=pings,
                maximum=settings.max_concurrency,
                hold_ms=settings.warm_hold_ms,
                backoff=settings.backoff,
                warmer_function=settings.warmer_function,
            )
        )
    return results


def _now(event: Any) -> datetime:
    """The scheduled event's time (EventBridge sets it), else the clock."""
    if isinstance(event, dict) and isinstance(event.get("time"), str):
        try:
            return floor_minute(datetime.fromisoformat(event["time"].replace("Z", "+00:00")))
        except ValueError:
            pass
    return floor_minute(datetime.now(UTC))
