"""What keeps a function warm: the scheduled warmer (warmer.py), the provisioned-concurrency
controller (controller.py), the policies that decide (policies/), and the trace-driven simulator
(simulator/) that scores them.

What other packages may use, importable from here (loaded on first use: the warmer and controller
Lambdas import only the modules their handlers need). The handlers themselves are not exported:
Lambda names them (`warmers.warmer.handler`, `warmers.controller.handler`), and importing either
reads its settings from the environment, as its init does:

    decide                               the controller's decision from a metrics history
    WarmerSettings, ControllerSettings   their settings, read once from the environment
    POLICY_NAMES, parse_policies         the policies by name
    Trace                                an invocation trace (warmers/traces.py)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.lazy import exports

if TYPE_CHECKING:
    from warmers.controller import decide
    from warmers.policies import POLICY_NAMES, parse_policies
    from warmers.settings import ControllerSettings, WarmerSettings
    from warmers.traces import Trace

_EXPORTS = {
    "decide": ("warmers.controller", "decide"),
    "WarmerSettings": ("warmers.settings", "WarmerSettings"),
    "ControllerSettings": ("warmers.settings", "ControllerSettings"),
    "POLICY_NAMES": ("warmers.policies", "POLICY_NAMES"),
    "parse_policies": ("warmers.policies", "parse_policies"),
    "Trace": ("warmers.traces", "Trace"),
}

__all__ = [
    "POLICY_NAMES",
    "ControllerSettings",
    "Trace",
    "WarmerSettings",
    "decide",
    "parse_policies",
]

__getattr__ = exports(__name__, _EXPORTS)
