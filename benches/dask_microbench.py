"""The two workloads of `rask microbench`, on dask.distributed.

(a) N independent no-op tasks through client.map + client.gather;
(b) an N-leaf pairwise tree reduction built with dask.delayed and computed at once.
LocalCluster with 2 workers x 1 thread, in-process (processes=False) as rask's
local cluster, or with `processes` as the second argument as 2 worker processes
(as `rask scheduler` + 2 `rask worker`). Prints one JSON line with the same keys
as `rask microbench --json`.
"""

import json
import sys
import time

import dask
from dask.distributed import Client, LocalCluster


def noop(i):
    return i


def add(a, b):
    return a + b


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    processes = len(sys.argv) > 2 and sys.argv[2] == "processes"
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None)
    client = Client(cluster)

    start = time.perf_counter()
    futures = client.map(noop, range(n))
    results = client.gather(futures)
    map_seconds = time.perf_counter() - start
    assert sum(results) == n * (n - 1) // 2
    del futures

    start = time.perf_counter()
    level = [dask.delayed(noop)(i) for i in range(n)]
    ntasks = len(level)
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level), 2):
            if j + 1 < len(level):
                nxt.append(dask.delayed(add)(level[j], level[j + 1]))
                ntasks += 1
            else:
                nxt.append(level[j])
        level = nxt
    total = level[0].compute()
    tree_seconds = time.perf_counter() - start
    assert total == n * (n - 1) // 2

    print(json.dumps({
        "map_tasks_per_s": round(n / map_seconds),
        "tree_tasks_per_s": round(ntasks / tree_seconds),
        "n": n,
        "workers": 2,
        "threads": 1,
        "dask": dask.__version__,
        "cluster": "processes" if processes else "local",
    }))
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
