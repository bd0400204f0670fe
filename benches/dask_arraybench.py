"""The dask.array side of benches/arraybench.sh: the same five workloads as
`rask arraybench`, on Dask's threaded scheduler with the same number of threads.
Usage: python dask_arraybench.py FRACTION THREADS [ONLY]; prints one JSON line."""
import json
import math
import os
import statistics
import sys
import time

import dask
import dask.array as da
from dask.distributed import wait  # noqa: F401  (persist below is synchronous)

fraction = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
only = {int(x) for x in sys.argv[3].split(",")} if len(sys.argv) > 3 and sys.argv[3] else set()
dask.config.set(scheduler="threads", num_workers=threads)


def side(n):
    return max(1, round(n * math.sqrt(fraction)))


def count(n):
    return max(1, round(n * fraction))


def seconds(f):
    start = time.perf_counter()
    value = f()
    return value, time.perf_counter() - start


def wanted(n):
    return not only or n in only


results = {}
if wanted(1):
    n, c = side(20000), side(1000)
    x = da.random.random((n, n), chunks=(c, c))
    _, results["transpose_mean_s"] = seconds(lambda: (x + x.T).mean(axis=0).compute())
if wanted(2):
    x = da.random.random(count(500e6), chunks=count(12.5e6)).persist()
    # Sub-second runs: the median of five, on both sides (the first run right
    # after persisting is sometimes far faster than any later one).
    results["persisted_sum_s"] = statistics.median(seconds(lambda: x.sum().compute())[1] for _ in range(5))
    results["persisted_std_s"] = statistics.median(seconds(lambda: x.std().compute())[1] for _ in range(5))
    del x
if wanted(3):
    n, c = side(20000), side(1000)
    x = da.random.random((n, n), chunks=(c, n)).persist()
    # New memory costs a different amount from run to run in this VM (freed
    # pages go back to the host): the median of three, on both sides.
    times = sorted(seconds(lambda: x.rechunk((n, c)).persist())[1] for _ in range(3))
    results["rechunk_s"] = times[1]
    del x
if wanted(4):
    n, c = side(8000), side(1000)
    a = da.random.random((n, n), chunks=(c, c)).persist()
    b = da.random.random((n, n), chunks=(c, c)).persist()
    # Ten seconds each, and the VM's speed drifts: the median of three, as rask's.
    results["matmul_s"] = statistics.median(seconds(lambda: (a @ b).persist())[1] for _ in range(3))
    # The bound: one NumPy call on the same matrices in memory (OpenBLAS, all threads).
    a_np, b_np = a.compute(), b.compute()
    results["numpy_matmul_s"] = statistics.median(seconds(lambda: a_np @ b_np)[1] for _ in range(3))
    results["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE", "(chosen by OpenBLAS)")
    del a_np, b_np
    del a, b
if wanted(5):
    x = da.random.normal(0.0, 1.0, size=count(1e9), chunks=count(12.5e6))
    _, results["normal_std_s"] = seconds(lambda: x.std().compute())
results["fraction"] = fraction
results["threads"] = threads
results["dask"] = dask.__version__
print(json.dumps(results))
