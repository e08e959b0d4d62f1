"""Rules that span sections, and what they decide (the controller's provisioned-concurrency mode)."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from functions.errors import ConfigError
from infra.config.schema import PreheatConfig


def check_rules(config: PreheatConfig) -> PreheatConfig:
    """Rules that span sections; and the moto target, which drops what moto cannot create."""
    c = config.controller
    if c.pc_mode == "scheduled" and config.lambda_.warm_start != "provisioned":
        raise ConfigError(
            "preheat.controller.pcMode 'scheduled' needs preheat.lambda.warmStart 'provisioned' "
            "(the Application Auto Scaling target it schedules on)"
        )
    if c.pc_mode == "direct" and config.lambda_.warm_start == "provisioned":
        raise ConfigError(
            "preheat.controller.pcMode 'direct' would fight Application Auto Scaling, which owns the alias's "
            "provisioned concurrency when preheat.lambda.warmStart is 'provisioned': use 'scheduled' (or 'auto'), "
            "or warmStart 'none' to leave provisioned concurrency to the controller alone"
        )
    if c.pc_mode == "direct" and config.lambda_.warm_start == "snapstart":
        raise ConfigError(
            "preheat.controller.pcMode 'direct' cannot set provisioned concurrency on a SnapStart function: "
            "use 'off' or preheat.lambda.warmStart 'provisioned'"
        )
    if config.moto:
        # moto's CloudFormation cannot model Docker image assets, aliases, Function URLs, Application
        # Auto Scaling or SnapStart (see ../shared/notes/aws-local.md): deploy what it can.
        lam = replace(config.lambda_, package="zip", warm_start="none", url=False)
        return replace(config, lambda_=lam, controller=replace(c, pc_mode="off"))
    return config


def controller_pc_mode(config: PreheatConfig) -> Literal["direct", "scheduled", "off"]:
    mode = config.controller.pc_mode
    if mode == "auto":
        return "scheduled" if config.lambda_.warm_start == "provisioned" else "off"
    return mode
