"""The twin process: moto_server, the AWS endpoint, one HTTPS Function URL per function, the
instance pools, the schedules, and the log/metric pipeline, on one asyncio loop.

Run by `preheat up` (and tests) as `python -m scripts.twin.server --config CONFIG.json`. When it is
ready it writes `<state_dir>/twin.json` (see state.py); SIGTERM or SIGINT stop everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from scripts.twin import emf, http11, tls
from scripts.twin.concurrency import Fleet
from scripts.twin.config import TwinConfig
from scripts.twin.function_url import FunctionUrl
from scripts.twin.http11 import Request, Response
from scripts.twin.instance import Launch
from scripts.twin.invoke_api import Gateway
from scripts.twin.logs import FunctionLogs
from scripts.twin.moto import MotoServer, create_tables, register
from scripts.twin.platform_metrics import PlatformMetrics
from scripts.twin.pool import Function
from scripts.twin.records import Records
from scripts.twin.sagemaker import SageMaker
from scripts.twin.scheduler import Scheduler
from scripts.twin.state import STATE_FILE, TwinState, pid_alive, write_state

log = logging.getLogger("preheat.twin")

# What Lambda's python runtime provides besides the standard library (awslambdaric, boto3).
RUNTIME_DISTRIBUTIONS = (
    "awslambdaric", "simplejson", "snapshot-restore-py", "boto3", "botocore", "s3transfer", "jmespath",
    "python-dateutil", "six", "urllib3",
)


def prepare_runtime_dir(directory: Path) -> Path:
    """A directory of links to the runtime's packages: the only site-packages an isolated instance sees."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            log.warning("runtime package %s is not installed; isolated functions may fail to import it", name)
            continue
        tops = {Path(str(f)).parts[0] for f in dist.files or () if not str(f).startswith("..")}
        for top in tops:
            if top.endswith((".dist-info", ".egg-info")) or top in ("__pycache__", "bin"):
                continue
            source = Path(str(dist.locate_file(top)))
            link = directory / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    return directory


class Twin:
    def __init__(self, config: TwinConfig) -> None:
        self.config = config
        self.state_dir = config.state_dir.resolve()
        self.functions: dict[str, Function] = {}
        self.urls: dict[str, FunctionUrl] = {}
        self.records = Records()
        self.moto = MotoServer(config.host, self.state_dir / "moto.log", Launch.wrapper_for_this_machine())
        self.shipper: emf.Shipper | None = None
        self.platform: PlatformMetrics | None = None
        self.scheduler: Scheduler | None = None
        self.gateway: Gateway | None = None
        self.sagemaker: SageMaker | None = None
        self._gateway_server: asyncio.Server | None = None
        self._reaper: asyncio.Task[None] | None = None
        self.endpoint = ""
        self.certs: tls.Certificates | None = None

    async def start(self) -> TwinState:
        config = self.config
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.certs = tls.ensure(self.state_dir / "tls")
        await self.moto.start()
        moto_url = self.moto.url

        def clients() -> tuple[Any, Any]:
            import boto3

            session = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name=config.region
            )
            return (session.client("cloudwatch", endpoint_url=moto_url), session.client("logs", endpoint_url=moto_url))

        self.shipper = emf.Shipper(clients)
        self.shipper.start()
        self.platform = PlatformMetrics(self.shipper)

        async def gateway(request: Request) -> Response:
            assert self.gateway is not None and self.sagemaker is not None
            answer = await self.sagemaker.handle(request, self.gateway.forward)
            return answer if answer is not None else await self.gateway.handle(request)

        self._gateway_server = await http11.serve(gateway, config.host, config.gateway_port)
        self.endpoint = f"http://{config.host}:{http11.bound_port(self._gateway_server)}"
        launch = Launch(
            host=config.host,
            region=config.region,
            account_id=config.account_id,
            gateway_url=self.endpoint,
            runtime_dir=prepare_runtime_dir(self.state_dir / "runtime"),
            wrapper=Launch.wrapper_for_this_machine(),
        )
        fleet = Fleet(config.max_instances)
        for spec in config.functions:
            logs = FunctionLogs(spec.name, self.state_dir / "logs", self.shipper)
            function = Function(spec, config, launch, logs, fleet, self.records, self.platform)
            self.functions[spec.name] = function
            self.platform.gauge(function.concurrency.pc_gauges)
        context = self.certs.server_context()
        for name, function in self.functions.items():
            if function.spec.url_qualifier is not None:
                url = FunctionUrl(function, config.host, context)
                await url.start()
                self.urls[name] = url
        self.scheduler = Scheduler(
            config.schedules, self.functions, region=config.region, account_id=config.account_id,
            time_scale=config.schedule_time_scale,
        )
        self.gateway = Gateway(
            self.functions, self.records, (config.host, self.moto.port),
            url_of=lambda name: self.urls[name].url if name in self.urls else None,
            control={"schedules": self._schedules, "flush": self._flush, "endpoints": self._endpoints},
        )
        self.sagemaker = SageMaker(
            specs=config.endpoints, region=config.region, account_id=config.account_id, host=config.host,
            gateway_url=self.endpoint, moto_url=moto_url, code_dir=Path(__file__).resolve().parents[2], state_dir=self.state_dir,
            keep_alive_s=config.keep_alive_s, shipper=self.shipper, records=self.records,
            wrapper=Launch.wrapper_for_this_machine(), platform=self.platform,
        )
        import boto3

        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=config.region
        )
        await asyncio.to_thread(create_tables, session, config.tables, moto_url)
        await asyncio.to_thread(register, session, config.functions, moto_url)
        for function in self.functions.values():
            function.start()
        self.scheduler.start()
        await self.sagemaker.start()
        self._reaper = asyncio.create_task(self._reap())
        return self.state()

    def state(self) -> TwinState:
        assert self.certs is not None
        return TwinState(
            pid=os.getpid(),
            started_at=time.time(),
            state_dir=str(self.state_dir),
            endpoint=self.endpoint,
            moto=self.moto.url,
            region=self.config.region,
            ca=str(self.certs.ca),
            log_dir=str(self.state_dir / "logs"),
            functions={
                name: {
                    "url": self.urls[name].url if name in self.urls else None,
                    "url_qualifier": f.spec.url_qualifier,
                    "url_auth": f.spec.url_auth,
                    "handler": f.spec.handler,
                    "isolated": f.spec.isolated,
                    "layers": [str(p) for p in f.spec.layers],
                    "log_file": str(f.logs.path),
                }
                for name, f in self.functions.items()
            },
            endpoints={spec.name: {"model_dir": str(spec.model_dir), **spec.endpoint.to_dict()}
                       for spec in self.config.endpoints},
            tables=list(self.config.tables),
        )

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for function in self.functions.values():
                try:
                    function.reap()
                except Exception:
                    log.exception("reaping %s failed", function.spec.name)
            if self.sagemaker is not None:
                self.sagemaker.reap()
            if self.platform is not None:
                self.platform.tick()

    async def _schedules(self, request: Request) -> Response:
        assert self.scheduler is not None
        parts = [p for p in request.path.split("/") if p][1:]
        if request.method == "GET" and len(parts) == 1:
            return Response.json(200, {"schedules": self.scheduler.describe()})
        if request.method == "POST" and len(parts) == 3 and parts[2] == "fire":
            if parts[1] not in self.scheduler.schedules:
                return Response.json(404, {"code": "unknown_schedule", "message": f"no schedule {parts[1]!r}"})
            return Response.json(202, {"event_id": self.scheduler.fire(parts[1])})
        return Response.json(404, {"code": "not_found", "message": f"no control route {request.method} {request.path}"})

    async def _endpoints(self, request: Request) -> Response:
        assert self.sagemaker is not None
        return await self.sagemaker.control(request)

    async def _flush(self, request: Request) -> Response:
        assert self.shipper is not None and self.platform is not None
        await asyncio.sleep(0.05)  # lines already printed but not yet read from the pipes
        self.platform.flush()
        done = await asyncio.to_thread(self.shipper.flush, 10.0)
        return Response.json(200, {"flushed": done, "metrics_sent": self.shipper.metrics_sent,
                                   "failures": self.shipper.failures})

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        if self.scheduler is not None:
            await self.scheduler.stop()
        for url in self.urls.values():
            url.close()
        if self._gateway_server is not None:
            self._gateway_server.close()
        await asyncio.gather(*(f.stop() for f in self.functions.values()), return_exceptions=True)
        if self.sagemaker is not None:
            await self.sagemaker.stop()
        for function in self.functions.values():
            function.logs.close()
        if self.platform is not None:
            self.platform.flush()
        if self.shipper is not None:
            await asyncio.to_thread(self.shipper.stop, 2.0)
        await self.moto.stop()


async def _watch_owner(pid: int, stop: asyncio.Event) -> None:
    """A twin started for a demo, benchmark or test goes when the process that started it does."""
    while True:
        await asyncio.sleep(1.0)
        if not pid_alive(pid):
            log.info("owner process %d is gone; stopping", pid)
            stop.set()
            return


async def serve(config: TwinConfig, owner: int | None = None) -> int:
    twin = Twin(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_owner(owner, stop)) if owner else None
    state_path = config.state_dir / STATE_FILE
    try:
        state = await twin.start()
    except Exception:
        log.exception("the twin failed to start")
        await twin.stop()
        return 1
    write_state(state_path, state)
    log.info("twin ready: endpoint %s, %d function(s)", state.endpoint, len(state.functions))
    await stop.wait()
    log.info("stopping")
    if watcher is not None:
        watcher.cancel()
    await twin.stop()
    with contextlib.suppress(FileNotFoundError, ValueError):
        current = json.loads(state_path.read_text())
        if current.get("pid") == os.getpid():
            state_path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.twin.server")
    parser.add_argument("--config", type=Path, required=True, help="a TwinConfig as JSON")
    parser.add_argument("--owner", type=int, help="stop when this process id is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    config = TwinConfig.from_dict(json.loads(args.config.read_text()))
    return asyncio.run(serve(config, args.owner))


if __name__ == "__main__":
    sys.exit(main())
