"""dask-jobqueue's SLURMCluster on the same SLURM as `rask jobqueuebench`:
(1) from creating the cluster and scale(n) until n workers are connected;
(2) with adapt(minimum=0, maximum=n) on an idle cluster, from a burst of slow
tasks until the first and the n-th worker connect. Prints one JSON line.
Usage: dask_jobqueuebench.py WORKERS REPEAT"""
import json
import statistics
import sys
import tempfile
import time

from dask.distributed import Client
from dask_jobqueue import SLURMCluster

n, repeat = int(sys.argv[1]), int(sys.argv[2])
workdir = tempfile.mkdtemp(prefix="dask-jobqueuebench-")
options = dict(
    cores=1,
    processes=1,
    memory="400MiB",
    walltime="00:10:00",
    log_directory=workdir,
    scheduler_options={"dashboard_address": ":0", "host": "127.0.0.1"},
)


def wait_workers(client, k):
    deadline = time.monotonic() + 120
    while len(client.scheduler_info(n_workers=-1)["workers"]) < k:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{k} workers did not connect")
        time.sleep(0.005)


def slow(i):
    time.sleep(1)
    return i


up, first, every = [], [], []
for _ in range(repeat):
    t0 = time.monotonic()
    with SLURMCluster(**options) as cluster, Client(cluster) as client:
        cluster.scale(n)
        wait_workers(client, n)
        up.append(time.monotonic() - t0)
    with SLURMCluster(**options) as cluster, Client(cluster) as client:
        cluster.adapt(minimum=0, maximum=n)
        time.sleep(2)
        t0 = time.monotonic()
        futures = client.map(slow, range(20 * n), pure=False)
        wait_workers(client, 1)
        first.append(time.monotonic() - t0)
        wait_workers(client, n)
        every.append(time.monotonic() - t0)
        client.cancel(futures)
print(json.dumps({
    "up_s": statistics.median(up),
    "adapt_first_s": statistics.median(first),
    "adapt_all_s": statistics.median(every),
    "workers": n,
}))
