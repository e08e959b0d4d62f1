"""EventBridge rate() schedules, fired by the twin (moto stores rules but never fires them).

Each schedule invokes its target asynchronously (InvocationType=Event, as EventBridge does) every
interval, first one interval after the twin starts, with the rule's constant input or EventBridge's
"Scheduled Event" envelope. `schedule_time_scale` divides the intervals, for tests and demos.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from scripts.twin.config import Schedule
from scripts.twin.pool import Function

log = logging.getLogger("preheat.twin")


def scheduled_event(schedule: Schedule, *, region: str, account_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{schedule.name}"],
        "detail": {},
    }


class Scheduler:
    def __init__(
        self,
        schedules: tuple[Schedule, ...],
        functions: Mapping[str, Function],
        *,
        region: str,
        account_id: str,
        time_scale: float = 1.0,
    ) -> None:
        self.schedules = {s.name: s for s in schedules}
        self.functions = functions
        self.region = region
        self.account_id = account_id
        self.time_scale = time_scale
        self.fired: dict[str, int] = {s.name: 0 for s in schedules}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(s)) for s in self.schedules.values()]

    def fire(self, name: str) -> str:
        """Fire one schedule now; returns the event id."""
        schedule = self.schedules[name]
        payload = schedule.input if schedule.input is not None else scheduled_event(
            schedule, region=self.region, account_id=self.account_id
        )
        self.fired[name] += 1
        return self.functions[schedule.function].invoke_async(
            json.dumps(payload).encode(), schedule.qualifier, source=f"schedule:{name}"
        )

    async def _loop(self, schedule: Schedule) -> None:
        interval = schedule.interval_s / self.time_scale
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval  # a fixed rate, not drifting with the time a firing takes
            try:
                self.fire(schedule.name)
            except Exception:
                log.exception("schedule %s could not fire", schedule.name)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "expression": s.expression, "function": s.function, "qualifier": s.qualifier,
             "interval_s": s.interval_s / self.time_scale, "fired": self.fired[s.name]}
            for s in self.schedules.values()
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
