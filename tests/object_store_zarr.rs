//! Zarr stores in object stores: a real S3 server (moto) and a real GCS server
//! (fake-gcs-server) on 127.0.0.1, started by this test. rask writes and reads
//! back on both, Python's zarr reads what rask wrote to S3 and the reverse
//! (objects moved by boto3), and worker processes read and write the buckets
//! themselves.

mod support;

use rask::array::{self, Compression, DType, ZarrOptions};
use rask::io::Location;
use rask::prelude::*;
use support::object_stores::Server;
use support::{run_python, Cluster, TempDir};

#[test]
fn zarr_round_trips_through_s3_and_gcs() {
    let s3 = Server::moto_s3("arrays");
    let gcs = Server::fake_gcs("arrays");
    let env: Vec<(String, String)> = s3.s3_env().into_iter().chain(gcs.gcs_env()).collect();
    // Set before any store client or worker process exists; this test is the
    // only one in its binary, so nothing reads the environment concurrently.
    for (key, value) in &env {
        std::env::set_var(key, value);
    }
    let client = Client::local(LocalCluster::new().workers(2)).unwrap();
    let data = array::random_normal(3, 0.0, 1.0, &[50, 30], [16, 7]).unwrap();
    let want = data.compute::<f64>(&client).unwrap();

    // rask writes and reads back in every store, both formats, every codec.
    for (url, format, compression) in [
        ("s3://arrays/x3zstd.zarr", 3, Compression::Zstd(0)),
        ("s3://arrays/deep/x2gzip.zarr", 2, Compression::Gzip(1)),
        ("gs://arrays/x3raw.zarr", 3, Compression::None),
        ("gs://arrays/x2zstd.zarr", 2, Compression::Zstd(3)),
        ("memory://scratch/x.zarr", 3, Compression::Gzip(1)),
    ] {
        data.to_zarr(
            url,
            &client,
            ZarrOptions {
                format,
                compression,
            },
        )
        .unwrap();
        let back = array::from_zarr(url).unwrap();
        assert_eq!(back.chunks(), &[vec![16, 16, 16, 2], vec![7, 7, 7, 7, 2]]);
        assert_eq!(back.compute::<f64>(&client).unwrap(), want, "{url}");
    }
    // The objects are where Zarr puts them.
    let chunk = Location::parse("s3://arrays/x3zstd.zarr/c/3/4").unwrap();
    assert!(chunk.read().unwrap().is_some());
    let chunk = Location::parse("gs://arrays/x2zstd.zarr/3.4").unwrap();
    assert!(chunk.read().unwrap().is_some());

    // Python's zarr (default codec: zstd) writes locally, boto3 uploads to S3,
    // rask reads from S3.
    let dir = TempDir::new("s3zarr");
    let root = dir.path().display().to_string();
    run_python(
        &format!(
            r#"
import os, boto3, zarr, numpy as np
x = np.arange(12 * 5, dtype="i4").reshape(12, 5) - 7
for fmt in (2, 3):
    a = zarr.create_array(store=f"{root}/py{{fmt}}", shape=x.shape, chunks=(5, 3), dtype="i4", zarr_format=fmt)
    a[:] = x
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for top, _, files in os.walk("{root}"):
    for f in files:
        path = os.path.join(top, f)
        s3.upload_file(path, "arrays", "python/" + os.path.relpath(path, "{root}"))
"#
        ),
        &env,
    );
    for fmt in [2, 3] {
        let x = array::from_zarr(format!("s3://arrays/python/py{fmt}")).unwrap();
        assert_eq!(x.dtype(), DType::I32);
        let values: Vec<i32> = x.compute::<i32>(&client).unwrap().iter().copied().collect();
        assert_eq!(values, (-7..53).collect::<Vec<i32>>(), "format {fmt}");
    }

    // The reverse: boto3 downloads what rask wrote to S3, Python's zarr reads it.
    let printed = run_python(
        &format!(
            r#"
import os, boto3, zarr, numpy as np
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
for name in ("x3zstd.zarr", "deep/x2gzip.zarr"):
    for obj in s3.list_objects_v2(Bucket="arrays", Prefix=name + "/")["Contents"]:
        path = os.path.join("{root}/back", obj["Key"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file("arrays", obj["Key"], path)
    a = zarr.open_array("{root}/back/" + name, mode="r")
    print(a.shape, a.chunks, repr(round(float(a[:].sum()), 9)), a.compressors)
"#
        ),
        &env,
    );
    let sum: f64 = want.sum();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    for line in lines {
        assert!(
            line.starts_with(&format!("(50, 30) (16, 7) {}", (sum * 1e9).round() / 1e9)),
            "{line} (sum {sum})"
        );
    }

    // Worker processes read from S3 and write to GCS on their own.
    let mut cluster = Cluster::start("s3workers", &[]);
    cluster.add_worker(&["--nthreads", "2"]);
    let remote = Client::connect(&cluster.address).unwrap();
    cluster.wait_for_workers(&remote, 1);
    let x = array::from_zarr("s3://arrays/x3zstd.zarr").unwrap();
    let doubled = &x * 2.0;
    doubled
        .to_zarr(
            "gs://arrays/doubled.zarr",
            &remote,
            ZarrOptions {
                format: 3,
                compression: Compression::Zstd(0),
            },
        )
        .unwrap();
    let back = array::from_zarr("gs://arrays/doubled.zarr").unwrap();
    assert_eq!(back.compute::<f64>(&remote).unwrap(), &want * 2.0);

    // Bad locations are errors naming them.
    let missing = array::from_zarr("s3://arrays/nothing-here.zarr")
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("s3://arrays/nothing-here.zarr") && missing.contains("not a Zarr array"),
        "{missing}"
    );
    let no_bucket = array::from_zarr("s3://no-such-bucket/x.zarr")
        .unwrap_err()
        .to_string();
    assert!(
        no_bucket.contains("s3://no-such-bucket/x.zarr"),
        "{no_bucket}"
    );
    let scheme = array::from_zarr("ftp://host/x.zarr")
        .unwrap_err()
        .to_string();
    assert!(
        scheme.contains("ftp://host") && scheme.contains("unknown scheme"),
        "{scheme}"
    );
}
