"""`preheat bench cache`: replay a Zipf-distributed request stream through the cache tier.

Phases, all against the real default model (build/models/minilm) on this machine:
  model      the model alone, one text per call: what a miss costs before any cache work
  memory     one instance, in-process LRU only (the default deployment)
  redis      a fleet of instances (each its own LRU, requests spread round-robin as a load
             balancer would) sharing a real redis-server on 127.0.0.1
  dynamodb   the same fleet sharing moto's DynamoDB on 127.0.0.1 (moto is a Python server: its
             latency says nothing about DynamoDB's; hit rates and correctness still hold)
  outage     a fleet with a small LRU keeps serving while redis-server is killed (SIGKILL) and,
             later, started again on the same port: failed requests, latency meanwhile, recovery
  cold path  import cost of each client, and init + first shared-tier call, in fresh processes

Per level: hit_rate = hits / lookups that reached the level; share = answers served by it / requests.

Modules, one job each: command (arguments, the phases in order), workload (texts and the Zipf
stream), replay (a phase's latencies and their figures), outage, cold_path (fresh processes running
the child_* modules), report (the tables), plot.
"""

# Nothing is imported here: the cold path's child processes (`python -m scripts.bench_cache.child_*`)
# import this package before their clock starts, and must time only what they import themselves.


def __getattr__(name: str) -> object:
    """The command's `add_arguments` and `run` (scripts/cli.py looks them up on this package)."""
    if name in ("add_arguments", "run"):
        from scripts.bench_cache import command

        return getattr(command, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
