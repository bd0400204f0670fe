"""The bag benchmark's data and its peers (issue 15): word frequencies over
1 GB of JSON lines with dask.bag (its default multiprocessing scheduler) and
with Polars alone as a reference.

    python dask_bagbench.py generate DIR      # 16 files of ~64 MB, once
    python dask_bagbench.py run DIR THREADS   # prints one JSON line
"""
import itertools
import json
import os
import random
import sys
import time

FILES = 16
LINES_PER_FILE = 400_000  # ~64 MB of JSON lines each, 1 GB in all


def generate(directory):
    marker = os.path.join(directory, "done")
    if os.path.exists(marker):
        return
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(2026)
    # A Zipf-like vocabulary of 50,000 words.
    vocabulary = [f"w{i}" for i in range(50_000)]
    cumulative = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(vocabulary))))
    for f in range(FILES):
        with open(os.path.join(directory, f"part.{f}.json"), "w") as out:
            for i in range(LINES_PER_FILE):
                words = rng.choices(vocabulary, cum_weights=cumulative, k=rng.randint(15, 35))
                record = {"id": f * LINES_PER_FILE + i, "user": f"u{rng.randrange(10_000)}",
                          "score": rng.randrange(100), "text": " ".join(words)}
                out.write(json.dumps(record) + "\n")
    open(marker, "w").close()


def best(repeat, f):
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - start)
    return min(times), result


def run(directory, threads):
    import dask
    import dask.bag as db
    import polars as pl

    files = os.path.join(directory, "*.json")

    def with_dask():
        bag = db.read_text(files).map(json.loads).pluck("text").map(str.split).flatten()
        return bag.frequencies().topk(10, key=1).compute(scheduler="processes", num_workers=threads)

    def with_polars():
        return (pl.scan_ndjson(files).select(pl.col("text").str.split(" ").explode())
                .group_by("text").len().sort("len", descending=True).head(10).collect())

    results = {}
    results["dask_words_s"], top = best(int(os.environ.get("RASK_BENCH_DASK_REPEAT", "1")), with_dask)
    results["dask_top"] = [list(pair) for pair in top]
    results["polars_words_s"], _ = best(3, with_polars)
    print(json.dumps(results))


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2])
    else:
        run(sys.argv[2], int(sys.argv[3]))
