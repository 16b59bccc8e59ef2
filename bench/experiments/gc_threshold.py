"""Benchmark experiment only: the project with gc.set_threshold(BENCH_EXP_GC_THRESHOLD).

`BENCH_EXP_GC_THRESHOLD=a,b,c` (e.g. `700,10,10000`: the young generations as CPython's
defaults, full collections all but off). Used by `bench/s5.sh`'s `project+gc` target to
price what the garbage collector costs with 10,000 live streams; never production.
"""

from __future__ import annotations

import gc
import os

from project.asgi import application

gc.set_threshold(*(int(x) for x in os.environ["BENCH_EXP_GC_THRESHOLD"].split(",")))

__all__ = ["application"]
