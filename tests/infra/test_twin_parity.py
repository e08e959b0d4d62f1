"""The twin's default stack is the CDK stack: for the same cdk.json context, the functions' sizes,
environment variables and schedules, the cache table and the SageMaker endpoint that `preheat up`
runs are what the synthesized template holds, up to the deviations scripts/twin/stack.py documents.

Both sides start from cdk.json and the same `-c KEY=VALUE` overrides: the template through the CDK
app (in process, and once through the real CDK CLI), the twin through infra.config.load. References
to resources CloudFormation names (`{"Ref": <function or table>}`) stand for the twin's fixed names
(scripts.twin.stack.NAMES), `{"Ref": "AWS::Region"}` for the twin's region; any other token fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from functions.sagemaker.endpoint import EndpointConfig
from infra.config import ConfigError, PreheatConfig, cli_context, load
from scripts.twin.config import DEFAULT_FUNCTION, TwinConfig, TwinConfigError
from scripts.twin.stack import (
    CACHE_TABLE,
    CONTROLLER_FUNCTION,
    NAMES,
    TWIN_MAX_CONCURRENCY,
    WARMER_FUNCTION,
    default_config,
)
from tests.infra.conftest import ROOT, BuildOutputs
from tests.infra.test_synth_cli import cdk_cli, env


def overrides(outputs: BuildOutputs, *extra: str) -> list[str]:
    """`-c` assignments: the stand-in build outputs (synth needs layer directories), then `extra`."""
    stand_ins = [a for a in outputs.cli_context() if a != "-c"]
    return [*stand_ins, *extra]


@dataclass(frozen=True)
class StackView:
    """What the twin must match, read from a template with the stack's references resolved."""

    functions: dict[str, dict[str, Any]]  # twin name -> MemorySize, Timeout, Reserved..., Variables
    schedules: dict[str, str]  # twin function name -> ScheduleExpression
    tables: tuple[str, ...]
    endpoint: EndpointConfig | None


def logical_names(stack: Any) -> dict[str, str]:
    """The stack's logical id of each resource in NAMES -> the twin's name for it."""
    found = {}
    for path, name in NAMES.items():
        construct = stack
        for part in path.split("/"):
            construct = construct.node.try_find_child(part)
            if construct is None:
                break
        if construct is None:
            continue  # turned off in this config (the warmer, the table)
        found[stack.resolve(stack.get_logical_id(construct.node.default_child))] = name
    assert DEFAULT_FUNCTION in found.values(), f"NAMES must name the inference function's path: {NAMES}"
    return found


def resolver(names: dict[str, str], region: str) -> Any:
    def resolve(value: Any, where: str) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and set(value) == {"Ref"}:
            if value["Ref"] == "AWS::Region":
                return region
            if value["Ref"] in names:
                return names[value["Ref"]]
        raise AssertionError(f"{where}: {value!r} is a token the twin has no value for")

    return resolve


def view(template: Any, names: dict[str, str], region: str) -> StackView:
    resolve = resolver(names, region)
    functions: dict[str, dict[str, Any]] = {}
    ids: dict[str, str] = {}
    for logical_id, fn in template.find_resources("AWS::Lambda::Function").items():
        props = fn["Properties"]
        name = names[logical_id]
        ids[logical_id] = name
        variables = props.get("Environment", {}).get("Variables", {})
        functions[name] = {
            "handler": props.get("Handler"),
            "memory_mb": props["MemorySize"],
            "timeout_s": props["Timeout"],
            "reserved_concurrency": props.get("ReservedConcurrentExecutions"),
            "env": {k: resolve(v, f"{name}.{k}") for k, v in variables.items()},
            "url_auth": None,
        }
    for url in template.find_resources("AWS::Lambda::Url").values():
        functions[ids[url["Properties"]["TargetFunctionArn"]["Fn::GetAtt"][0]]]["url_auth"] = url["Properties"]["AuthType"]
    schedules = {}
    for rule in template.find_resources("AWS::Events::Rule").values():
        props = rule["Properties"]
        (target,) = props["Targets"]
        function = target["Arn"]["Fn::GetAtt"][0]
        schedules[ids[function]] = props["ScheduleExpression"]
    tables = tuple(names[t] for t in template.find_resources("AWS::DynamoDB::Table"))
    endpoint = None
    models = template.find_resources("AWS::SageMaker::Model")
    if models:
        ((model,), (config,), (ep,)) = (
            list(models.values()),
            list(template.find_resources("AWS::SageMaker::EndpointConfig").values()),
            list(template.find_resources("AWS::SageMaker::Endpoint").values()),
        )
        container = model["Properties"]["PrimaryContainer"]
        environment = {k: resolve(v, f"sagemaker.{k}") for k, v in container["Environment"].items()}
        endpoint = EndpointConfig.from_resources(
            ep["Properties"]["EndpointName"],
            {"PrimaryContainer": {**container, "Environment": environment}},
            config["Properties"],
        )
    return StackView(functions, schedules, tables, endpoint)


def expected_twin_env(name: str, stack_env: dict[str, str], twin: TwinConfig, model_dir: Path) -> dict[str, str]:
    """The stack's variables with the deviations scripts/twin/stack.py documents, and only those."""
    env = dict(stack_env)
    if name == DEFAULT_FUNCTION:
        # The model: its layer at /opt/model when it holds this model (as the stack), else its directory.
        spec = twin.function(name)
        assert spec is not None
        if not any((layer / "model").is_dir() for layer in spec.layers):
            env["PREHEAT_MODEL_DIR"] = str(model_dir)
    if name == CONTROLLER_FUNCTION:
        env["PREHEAT_PC_MODE"] = "off" if env["PREHEAT_PC_MODE"] == "off" else "direct"  # no AAS here
        env["PREHEAT_MAX_CONCURRENCY"] = str(min(int(env["PREHEAT_MAX_CONCURRENCY"]), TWIN_MAX_CONCURRENCY))
        if not twin.endpoints:  # the twin serves the endpoint once the default model is built
            env.pop("PREHEAT_SAGEMAKER_ENDPOINT", None)
            env.pop("PREHEAT_SAGEMAKER_VARIANT", None)
    return env


def assert_twin_is_the_stack(twin: TwinConfig, stack: StackView, config: PreheatConfig) -> None:
    """`config`: the stack's config, for the model both serve (preheat.model) and its layer."""
    assert {f.name for f in twin.functions} == set(stack.functions)
    for name, deployed in stack.functions.items():
        spec = twin.function(name)
        assert spec is not None
        assert (spec.handler, spec.memory_mb, spec.timeout_s, spec.reserved_concurrency) == (
            deployed["handler"],
            deployed["memory_mb"],
            deployed["timeout_s"],
            deployed["reserved_concurrency"],
        ), name
        assert dict(spec.env) == expected_twin_env(name, deployed["env"], twin, config.model_dir), name
        if deployed["url_auth"] is not None:  # the stack's Function URL, and the twin's, authenticate alike
            assert spec.url_auth == deployed["url_auth"], name
    assert {s.function: s.expression for s in twin.schedules} == stack.schedules
    assert all(s.qualifier is None for s in twin.schedules), "rules target the function, as the stack's"
    assert twin.tables == stack.tables
    inference = twin.function(DEFAULT_FUNCTION)
    assert inference is not None
    # The model layer synth deploys (it checked the layer holds this model) is the one the twin mounts.
    assert [layer for layer in inference.layers if (layer / "model").is_dir()] == [config.layers.model]
    if stack.endpoint is None:
        assert twin.endpoints == ()
    else:
        (served,) = twin.endpoints
        assert served.endpoint == stack.endpoint
        assert served.model_dir == config.model_dir


def in_process(
    synth: Any, outputs: BuildOutputs, tmp_path: Path, *extra: str
) -> tuple[TwinConfig, StackView, PreheatConfig]:
    assignments = overrides(outputs, *extra)
    stack, template = synth(cli_context(ROOT, assignments))
    twin = default_config(ROOT, context=assignments, state_dir=tmp_path)
    return twin, view(template, logical_names(stack), twin.region), load(ROOT, assignments)


# -- the tests ----------------------------------------------------------------------------------------


def test_the_twin_runs_the_stack_cdk_json_configures(
    synth: Any, outputs: BuildOutputs, tmp_path: Path
) -> None:
    twin, stack, config = in_process(synth, outputs, tmp_path)
    assert_twin_is_the_stack(twin, stack, config)
    # What cdk.json says, so the comparison above is about the real defaults.
    context = json.loads((ROOT / "cdk.json").read_text())["context"]["preheat"]
    assert stack.schedules == {
        WARMER_FUNCTION: context["warmer"]["schedule"],
        CONTROLLER_FUNCTION: context["controller"]["schedule"],
    }
    assert stack.functions[DEFAULT_FUNCTION]["memory_mb"] == context["lambda"]["memoryMb"]
    assert stack.tables == (CACHE_TABLE,)
    env = stack.functions[DEFAULT_FUNCTION]["env"]
    assert env["PREHEAT_CACHE_TABLE"] == CACHE_TABLE
    # The deviations are real in this config: the stack schedules through AAS, the twin acts directly.
    controller = twin.function(CONTROLLER_FUNCTION)
    assert controller is not None
    assert stack.functions[CONTROLLER_FUNCTION]["env"]["PREHEAT_PC_MODE"] == "scheduled"
    assert controller.env["PREHEAT_PC_MODE"] == "direct"


def test_context_overrides_show_up_in_the_stack_and_the_twin(
    synth: Any, outputs: BuildOutputs, tmp_path: Path
) -> None:
    before_twin, before, _ = in_process(synth, outputs, tmp_path)
    changed = (
        "preheat:warmer.schedule=rate(2 minutes)",
        "preheat:controller.schedule=rate(3 minutes)",
        "preheat:lambda.memoryMb=3008",
        "preheat:lambda.timeoutSeconds=20",
        "preheat:warmer.concurrency=3",
        "preheat:warmer.holdMs=2500",
        "preheat:controller.maxConcurrency=1",
        "preheat:lambda.runtime.threads=2",
        "preheat:cache.memoryBytes=1024",
        "preheat:sagemaker.memoryMb=2048",
        "preheat:sagemaker.endpointName=preheat-other",
        "preheat:service=embedder",
    )
    twin, after, config = in_process(synth, outputs, tmp_path, *changed)
    assert_twin_is_the_stack(twin, after, config)
    assert after.schedules == {WARMER_FUNCTION: "rate(2 minutes)", CONTROLLER_FUNCTION: "rate(3 minutes)"}
    assert before.schedules != after.schedules and before_twin.schedules != twin.schedules
    inference = after.functions[DEFAULT_FUNCTION]
    assert (inference["memory_mb"], inference["timeout_s"]) == (3008, 20)
    assert (
        inference["env"]["PREHEAT_THREADS"] == "2"
        and inference["env"]["POWERTOOLS_SERVICE_NAME"] == "embedder"
    )
    assert inference["env"]["PREHEAT_CACHE_MEMORY_BYTES"] == "1024"
    warmer = after.functions[WARMER_FUNCTION]
    assert warmer["timeout_s"] == 47 and warmer["env"]["PREHEAT_WARM_CONCURRENCY"] == "3"
    assert warmer["env"]["PREHEAT_WARM_HOLD_MS"] == "2500"
    controller = after.functions[CONTROLLER_FUNCTION]["env"]
    assert (controller["PREHEAT_MEMORY_MB"], controller["PREHEAT_MAX_CONCURRENCY"]) == ("3008", "1")
    assert controller["POWERTOOLS_SERVICE_NAME"] == "embedder-controller"
    if after.endpoint is not None and twin.endpoints:
        assert (twin.endpoints[0].name, twin.endpoints[0].endpoint.memory_mb) == ("preheat-other", 2048)


def test_turned_off_parts_are_off_on_the_twin_too(synth: Any, outputs: BuildOutputs, tmp_path: Path) -> None:
    twin, stack, config = in_process(
        synth,
        outputs,
        tmp_path,
        "preheat:lambda.warmStart=none",
        "preheat:controller.pcMode=direct",
        "preheat:lambda.reservedConcurrency=7",
        "preheat:warmer.enabled=false",
        "preheat:cache.table=false",
        "preheat:sagemaker.enabled=false",
    )
    assert_twin_is_the_stack(twin, stack, config)
    assert set(stack.functions) == {DEFAULT_FUNCTION, CONTROLLER_FUNCTION}
    assert stack.functions[DEFAULT_FUNCTION]["reserved_concurrency"] == 7
    assert "PREHEAT_CACHE_TABLE" not in stack.functions[DEFAULT_FUNCTION]["env"]
    assert twin.tables == () and twin.endpoints == ()
    controller = stack.functions[CONTROLLER_FUNCTION]["env"]
    assert controller["PREHEAT_PC_MODE"] == "direct" and "PREHEAT_WARMER_FUNCTION" not in controller


def test_the_model_the_context_names_is_the_twin_s_model_too(
    synth: Any, outputs: BuildOutputs, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.infra.conftest import build_outputs
    from tests.support.tiny_models import write_tensor_model

    tensor = build_outputs(tmp_path_factory.mktemp("tensor"), "linear", write_tensor_model)
    chosen = [f"preheat:{key}={value}" for key, value in tensor.overrides().items()]
    twin, stack, config = in_process(synth, outputs, tmp_path, *chosen)
    assert_twin_is_the_stack(twin, stack, config)
    inference = twin.function(DEFAULT_FUNCTION)
    assert inference is not None and tensor.layer in inference.layers
    assert stack.endpoint is not None and stack.endpoint.name == "preheat-linear"
    assert twin.endpoints[0].model_dir == tensor.models / "linear"
    # A layer of another model: synth refuses it (tests/infra/test_model_flow.py); the twin serves
    # the model the context names from its directory instead.
    stale = overrides(outputs, *chosen, f"preheat:layers.model={outputs.model_layer}")
    served = default_config(ROOT, context=stale, state_dir=tmp_path).function(DEFAULT_FUNCTION)
    assert served is not None and outputs.model_layer not in served.layers
    assert served.env["PREHEAT_MODEL_DIR"] == str(tensor.models / "linear")
    # A model that was not built stops `preheat up` as it stops synth, with the command that builds it.
    with pytest.raises(TwinConfigError, match=r"preheat build --model SPEC --name nope"):
        default_config(ROOT, context=overrides(outputs, "preheat:model=nope"), state_dir=tmp_path)


def test_the_twin_reads_context_as_the_cdk_cli_passes_it(tmp_path: Path) -> None:
    """Precedence, lowest first: ~/.cdk.json, cdk.context.json, cdk.json, then -c (strings)."""
    (tmp_path / "cdk.json").write_text(
        json.dumps(
            {"app": "x", "context": {"preheat": {"warmer": {"schedule": "rate(7 minutes)", "holdMs": 5}}}}
        )
    )
    (tmp_path / "cdk.context.json").write_text(
        json.dumps({"preheat": {"warmer": {"schedule": "rate(9 minutes)", "concurrency": 4}}, "other": 1})
    )
    user = tmp_path / "user.json"
    user.write_text(json.dumps({"context": {"other": 2, "mine": True}}))
    context = cli_context(tmp_path, ["preheat:warmer.holdMs=250"], user_config=user)
    assert context == {
        "preheat": {"warmer": {"schedule": "rate(7 minutes)", "holdMs": 5, "concurrency": 4}},
        "other": 1,
        "mine": True,
        "preheat:warmer.holdMs": "250",
    }
    config = PreheatConfig.from_context(context, root=tmp_path)
    assert (config.warmer.schedule, config.warmer.concurrency, config.warmer.hold_ms) == (
        "rate(7 minutes)",
        4,
        250,
    )
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        cli_context(tmp_path, ["preheat:warmer.holdMs"], user_config=None)


def test_bad_context_fails_the_twin_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(TwinConfigError, match=r"preheat\.lambda\.memoryMb"):
        default_config(ROOT, context=["preheat:lambda.memoryMb=64"], state_dir=tmp_path)
    # cron() is fine for EventBridge, not for the twin's scheduler: say which key, and what to do.
    with pytest.raises(TwinConfigError, match=r"preheat\.warmer\.schedule .*preheat:warmer\.schedule="):
        default_config(ROOT, context=["preheat:warmer.schedule=cron(0/5 * * * ? *)"], state_dir=tmp_path)


@pytest.mark.slow
def test_cdk_cli_synth_and_the_twin_agree_on_the_same_command_line(
    synth: Any, outputs: BuildOutputs, tmp_path: Path
) -> None:
    """`cdk synth -c ...` (cdk.json read by the CLI itself) and `preheat up -c ...`'s config."""
    extra = ("preheat:warmer.schedule=rate(4 minutes)", "preheat:lambda.memoryMb=1536")
    assignments = overrides(outputs, *extra)
    out = tmp_path / "cdk.out"
    cmd = [*cdk_cli(), "synth", "--quiet", "--no-notices", "--app", f"{sys.executable} -m infra.app",
           "--output", str(out)]  # fmt: skip
    for assignment in assignments:
        cmd += ["-c", assignment]
    proc = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"cdk synth failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    from aws_cdk.assertions import Template

    template = Template.from_json(json.loads((out / "Preheat.template.json").read_text()))
    stack, _ = synth(cli_context(ROOT, assignments))  # the same construct tree: the same logical ids
    twin = default_config(ROOT, context=assignments, state_dir=tmp_path / "twin")
    deployed = view(template, logical_names(stack), twin.region)
    assert_twin_is_the_stack(twin, deployed, load(ROOT, assignments))
    assert deployed.schedules[WARMER_FUNCTION] == "rate(4 minutes)"
    assert deployed.functions[DEFAULT_FUNCTION]["memory_mb"] == 1536
    assert load(ROOT, assignments) == PreheatConfig.from_context(cli_context(ROOT, assignments), root=ROOT)
