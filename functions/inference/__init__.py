"""The serving core: a model (arrays in, arrays out), its task (pre- and post-processing), the data
plane (payloads to arrays and back) and the HTTP protocol (routes, errors to status codes).

What other packages may use, importable from here:

    Runtime, open_task          the per-instance runtime (runtime.py), or just a directory's task
    Settings                    the runtime's settings, read once from the environment
    Manifest, load_manifest     a built model directory's manifest (manifest.py)
    create_app                  the FastAPI app (uvicorn, the SageMaker container, `preheat serve`)
    PreheatError, ConfigError, ModelLoadError, InvalidRequest   the core's errors (errors.py)

The names load on first use (module `__getattr__`): importing this package costs nothing on the
cold path, where the handler imports exactly the modules it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.lazy import exports

_EXPORTS = {
    "Runtime": ("functions.inference.runtime", "Runtime"),
    "open_task": ("functions.inference.runtime", "open_task"),
    "Settings": ("functions.inference.settings", "Settings"),
    "Manifest": ("functions.inference.manifest", "Manifest"),
    "load_manifest": ("functions.inference.manifest", "load"),
    "create_app": ("functions.inference.app", "create_app"),
    "PreheatError": ("functions.inference.errors", "PreheatError"),
    "ConfigError": ("functions.inference.errors", "ConfigError"),
    "ModelLoadError": ("functions.inference.errors", "ModelLoadError"),
    "InvalidRequest": ("functions.inference.errors", "InvalidRequest"),
}

__all__ = [
    "ConfigError",
    "InvalidRequest",
    "Manifest",
    "ModelLoadError",
    "PreheatError",
    "Runtime",
    "Settings",
    "create_app",
    "load_manifest",
    "open_task",
]

if TYPE_CHECKING:
    from functions.inference.app import create_app
    from functions.inference.errors import ConfigError, InvalidRequest, ModelLoadError, PreheatError
    from functions.inference.manifest import Manifest
    from functions.inference.manifest import load as load_manifest
    from functions.inference.runtime import Runtime, open_task
    from functions.inference.settings import Settings

__getattr__ = exports(__name__, _EXPORTS)
