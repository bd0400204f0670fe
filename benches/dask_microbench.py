"""The two workloads of `rask microbench`, on dask.distributed.

(a) N independent no-op tasks through client.map + client.gather;
(b) an N-leaf pairwise tree reduction built with dask.delayed and computed at once.
LocalCluster with 2 workers x 1 thread, in-process (processes=False) as rask's
local cluster, or with `processes` as the second argument as 2 worker processes
(as `rask scheduler` + 2 `rask worker`). `--workload map|tree|both` picks the
workloads. Prints one JSON line with the same keys as `rask microbench --json`,
including this process's peak resident memory.
"""

import argparse
import json
import resource
import time

import dask
from dask.distributed import Client, LocalCluster


def noop(i):
    return i


def add(a, b):
    return a + b


def map_and_gather(client, n):
    start = time.perf_counter()
    futures = client.map(noop, range(n))
    results = client.gather(futures)
    seconds = time.perf_counter() - start
    assert sum(results) == n * (n - 1) // 2
    return n / seconds


def tree_reduction(n):
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
    seconds = time.perf_counter() - start
    assert total == n * (n - 1) // 2
    return ntasks / seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("cluster", nargs="?", choices=["local", "processes"], default="local")
    parser.add_argument("--workload", choices=["map", "tree", "both"], default="both")
    args = parser.parse_args()
    n, processes = args.n, args.cluster == "processes"
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None)
    client = Client(cluster)

    line = {
        "n": n,
        "workers": 2,
        "threads": 1,
        "dask": dask.__version__,
        "cluster": "processes" if processes else "local",
    }
    if args.workload != "tree":
        line["map_tasks_per_s"] = round(map_and_gather(client, n))
    if args.workload != "map":
        line["tree_tasks_per_s"] = round(tree_reduction(n))
    line["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(line))
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
