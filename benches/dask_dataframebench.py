"""The dataframe comparison workloads for dask.dataframe, Daft's native runner
and Polars alone, on the files `rask dataframebench` reads (issue 15):

  groupby  mean of `value` by `key` over 50M rows in 50 Parquet files, 1,000 keys
  join     10M rows joined with 1M on `key`, then the sum of the joined `w`
  sort     10M rows sorted by `x`, written to Parquet

Usage: dask_dataframebench.py generate DIR
       dask_dataframebench.py upload DIR BUCKET   (the groupby files to s3://BUCKET/groupby/)
       dask_dataframebench.py run DIR THREADS WORKLOADS   (comma-separated)
DIR may be s3://BUCKET: the S3 server is the one AWS_ENDPOINT_URL names, with the
keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, given to every engine.
Prints one JSON line: the best of 3 seconds per engine and workload.
"""

import json
import os
import shutil
import sys
import time


def generate(root):
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(15)

    def write(directory, files, rows, make):
        path = os.path.join(root, directory)
        if os.path.isdir(path) and len(os.listdir(path)) == files:
            return
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        for i in range(files):
            make(rows).write_parquet(os.path.join(path, f"part-{i:03}.parquet"))

    write("groupby", 50, 1_000_000, lambda n: pl.DataFrame({
        "key": rng.integers(0, 1000, n), "value": rng.random(n)}))
    write("join/left", 10, 1_000_000, lambda n: pl.DataFrame({
        "key": rng.integers(0, 1_000_000, n), "v": rng.random(n)}))
    right = os.path.join(root, "join/right")
    if not (os.path.isdir(right) and len(os.listdir(right)) == 2):
        shutil.rmtree(right, ignore_errors=True)
        os.makedirs(right)
        for i in range(2):
            key = np.arange(i * 500_000, (i + 1) * 500_000)
            pl.DataFrame({"key": key, "w": rng.random(500_000)}).write_parquet(
                os.path.join(right, f"part-{i:03}.parquet"))
    write("sort", 10, 1_000_000, lambda n: pl.DataFrame({
        "x": rng.random(n), "y": rng.integers(0, 1 << 40, n)}))


def upload(root, bucket):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    directory = os.path.join(root, "groupby")
    for name in sorted(os.listdir(directory)):
        s3.upload_file(os.path.join(directory, name), bucket, f"groupby/{name}")


def s3_options(root, engine):
    """The keyword arguments that point `engine` at the S3 server, if `root` is there."""
    if not root.startswith("s3://"):
        return {}
    url, key, secret = (os.environ[v] for v in
                        ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    region = os.environ.get("AWS_REGION", "us-east-1")
    if engine == "dask":
        return {"storage_options": {"key": key, "secret": secret, "client_kwargs": {
            "endpoint_url": url, "region_name": region}}}
    if engine == "daft":
        from daft.io import IOConfig, S3Config
        return {"io_config": IOConfig(s3=S3Config(
            endpoint_url=url, key_id=key, access_key=secret, region_name=region))}
    return {"storage_options": {"aws_endpoint_url": url, "aws_access_key_id": key,
                                "aws_secret_access_key": secret, "aws_region": region,
                                "aws_allow_http": "true"}}


def best(f, repeat=3):
    times = []
    value = None
    for _ in range(repeat):
        start = time.perf_counter()
        value = f()
        times.append(time.perf_counter() - start)
    return min(times), value


def run_dask(root, threads, workloads, out):
    import dask
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    dask.config.set({"dataframe.convert-string": False})
    with LocalCluster(n_workers=1, threads_per_worker=threads, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        if "groupby" in workloads:
            out["dask_groupby_s"], _ = best(lambda: dd.read_parquet(
                f"{root}/groupby/*.parquet", **s3_options(root, "dask")
            ).groupby("key").value.mean().compute())
        if "join" in workloads:
            def join():
                left = dd.read_parquet(f"{root}/join/left/*.parquet")
                right = dd.read_parquet(f"{root}/join/right/*.parquet")
                return left.merge(right, on="key").w.sum().compute()
            out["dask_join_s"], _ = best(join)
        if "sort" in workloads:
            target = f"{root}/out/dask-sort"

            def sort():
                shutil.rmtree(target, ignore_errors=True)
                dd.read_parquet(f"{root}/sort/*.parquet").sort_values("x").to_parquet(target)
            out["dask_sort_s"], _ = best(sort)


def run_daft(root, threads, workloads, out):
    import daft
    from daft import col

    daft.set_runner_native()
    if "groupby" in workloads:
        out["daft_groupby_s"], _ = best(lambda: daft.read_parquet(
            f"{root}/groupby/*.parquet", **s3_options(root, "daft")
        ).groupby("key").agg(col("value").mean()).collect())
    if "join" in workloads:
        def join():
            left = daft.read_parquet(f"{root}/join/left/*.parquet")
            right = daft.read_parquet(f"{root}/join/right/*.parquet")
            return left.join(right, on="key").sum("w").collect()
        out["daft_join_s"], _ = best(join)
    if "sort" in workloads:
        target = f"{root}/out/daft-sort"

        def sort():
            shutil.rmtree(target, ignore_errors=True)
            daft.read_parquet(f"{root}/sort/*.parquet").sort("x").write_parquet(target)
        out["daft_sort_s"], _ = best(sort)


def run_polars(root, workloads, out):
    import polars as pl

    if "groupby" in workloads:
        out["polars_groupby_s"], _ = best(lambda: pl.scan_parquet(
            f"{root}/groupby/*.parquet", **s3_options(root, "polars")
        ).group_by("key").agg(pl.col("value").mean()).collect())
    if "join" in workloads:
        out["polars_join_s"], _ = best(lambda: pl.scan_parquet(f"{root}/join/left/*.parquet").join(
            pl.scan_parquet(f"{root}/join/right/*.parquet"), on="key").select(
                pl.col("w").sum()).collect())
    if "sort" in workloads:
        target = f"{root}/out/polars-sort.parquet"
        out["polars_sort_s"], _ = best(lambda: pl.scan_parquet(
            f"{root}/sort/*.parquet").sort("x").sink_parquet(target))


def main():
    if sys.argv[1] == "generate":
        generate(sys.argv[2])
        return
    if sys.argv[1] == "upload":
        upload(sys.argv[2], sys.argv[3])
        return
    root, threads, workloads = sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")
    if not root.startswith("s3://"):
        os.makedirs(f"{root}/out", exist_ok=True)
    out = {}
    run_polars(root, workloads, out)
    run_daft(root, threads, workloads, out)
    run_dask(root, threads, workloads, out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
