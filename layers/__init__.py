"""preheat's build side: model slimming (`preheat build`) and packaging (`preheat build layers`).
layers/README.md maps the modules to the two jobs.

The names below are what scripts/, infra/ and the tests use from the modules here. Each is imported
on first use (the module `__getattr__`), so `import layers` costs nothing, and
`from layers import paths` still imports the module `layers.paths`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.lazy import exports

if TYPE_CHECKING:
    from layers.archive import unzipped_bytes
    from layers.build import Built, SlimmingFailed, build_default
    from layers.model_requests import CLASSIFY, EMBEDDINGS, INVOCATIONS, RERANK, ModelRequests, Request
    from layers.modeldir import write_manifest
    from layers.quantize import QuantConfig
    from layers.samples import builtin_pairs
    from layers.source import default_source
    from layers.spec import ModelSpec, Overrides, SpecError
    from layers.spec import read as read_spec
    from layers.textdata import heldout

# public name -> (module, name in it)
_API = {
    "ModelSpec": ("layers.spec", "ModelSpec"),
    "Overrides": ("layers.spec", "Overrides"),
    "SpecError": ("layers.spec", "SpecError"),
    "read_spec": ("layers.spec", "read"),
    "Built": ("layers.build", "Built"),
    "SlimmingFailed": ("layers.build", "SlimmingFailed"),
    "build_default": ("layers.build", "build_default"),
    "default_source": ("layers.source", "default_source"),
    "QuantConfig": ("layers.quantize", "QuantConfig"),
    "write_manifest": ("layers.modeldir", "write_manifest"),
    "builtin_pairs": ("layers.samples", "builtin_pairs"),
    "heldout": ("layers.textdata", "heldout"),
    "unzipped_bytes": ("layers.archive", "unzipped_bytes"),
    "ModelRequests": ("layers.model_requests", "ModelRequests"),
    "Request": ("layers.model_requests", "Request"),
    "INVOCATIONS": ("layers.model_requests", "INVOCATIONS"),
    "EMBEDDINGS": ("layers.model_requests", "EMBEDDINGS"),
    "CLASSIFY": ("layers.model_requests", "CLASSIFY"),
    "RERANK": ("layers.model_requests", "RERANK"),
}

__all__ = [
    "CLASSIFY",
    "EMBEDDINGS",
    "INVOCATIONS",
    "RERANK",
    "Built",
    "ModelRequests",
    "ModelSpec",
    "Overrides",
    "QuantConfig",
    "Request",
    "SlimmingFailed",
    "SpecError",
    "build_default",
    "builtin_pairs",
    "default_source",
    "heldout",
    "read_spec",
    "unzipped_bytes",
    "write_manifest",
]

__getattr__ = exports(__name__, _API)
