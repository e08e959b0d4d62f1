"""A child of the cache bench's cold path, in a fresh interpreter: the milliseconds one import
statement adds on top of a preload.

    python -m scripts.bench_cache.child_import PRELOAD STATEMENT

prints the milliseconds as JSON. No `from __future__` import: the child imports nothing it need not
before its clock starts.
"""

import json
import sys
import time


def main(preload: str, statement: str) -> None:
    exec(preload)
    started = time.perf_counter()
    exec(statement)
    print(json.dumps((time.perf_counter() - started) * 1000))


if __name__ == "__main__":
    main(*sys.argv[1:])
