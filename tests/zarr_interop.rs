//! Zarr stores across implementations: rask writes, rask reads back; Python's
//! `zarr` package (installed by scripts/test.sh into target/test-venv) writes
//! format 2 and 3 stores that rask reads, and reads the stores rask writes.

mod support;

use rask::array::{self, Compression, DType, ZarrOptions};
use rask::prelude::*;
use support::TempDir;

fn run_python(script: &str) -> String {
    support::run_python(script, &[])
}

#[test]
fn rask_reads_what_python_zarr_writes_and_the_reverse() {
    let dir = TempDir::new("zarr");
    let root = dir.path().display().to_string();
    let client = Client::local(LocalCluster::new().workers(2)).unwrap();
    // Python writes: format 2 gzip and zlib, format 3 gzip and raw, both formats
    // with zarr's default codec, an all-zero
    // chunk left unwritten (it reads as the fill value), and an int32 and a bool store.
    run_python(&format!(
        r#"
import zarr, numcodecs, numpy as np
x = np.arange(7 * 9, dtype="f8").reshape(7, 9) / 4.0
x[:3, :4] = 0.0
for name, fmt, comp in [("v2gzip", 2, numcodecs.GZip(level=1)), ("v2zlib", 2, numcodecs.Zlib(level=1)),
                        ("v3gzip", 3, zarr.codecs.GzipCodec(level=1)), ("v3raw", 3, None),
                        ("v2default", 2, "auto"), ("v3default", 3, "auto")]:
    a = zarr.create_array(store="{root}/" + name, shape=x.shape, chunks=(3, 4), dtype="f8",
                          zarr_format=fmt, compressors=comp)
    a[:] = x
i = zarr.create_array(store="{root}/ints", shape=(10,), chunks=(4,), dtype="i4", zarr_format=3, compressors=None)
i[:] = np.arange(10, dtype="i4") - 5
b = zarr.create_array(store="{root}/flags", shape=(5, 2), chunks=(2, 2), dtype="bool", zarr_format=2, compressors=None)
b[:] = np.arange(10).reshape(5, 2) % 3 == 0
"#
    ));
    let expected = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[7, 9]), |i| {
        if i[0] < 3 && i[1] < 4 {
            0.0
        } else {
            (i[0] * 9 + i[1]) as f64 / 4.0
        }
    });
    // "auto" is zarr's default codec: zstd, in both formats.
    for name in [
        "v2gzip",
        "v2zlib",
        "v3gzip",
        "v3raw",
        "v2default",
        "v3default",
    ] {
        let x = array::from_zarr(dir.path().join(name)).unwrap();
        assert_eq!(x.chunks(), &[vec![3, 3, 1], vec![4, 4, 1]], "{name}");
        assert_eq!(x.compute::<f64>(&client).unwrap(), expected, "{name}");
    }
    let ints = array::from_zarr(dir.path().join("ints")).unwrap();
    assert_eq!(ints.dtype(), DType::I32);
    let ints: Vec<i32> = ints
        .compute::<i32>(&client)
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(ints, (-5..5).collect::<Vec<i32>>());
    let flags = array::from_zarr(dir.path().join("flags")).unwrap();
    assert_eq!(
        flags
            .compute::<bool>(&client)
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        (0..10).map(|i| i % 3 == 0).collect::<Vec<_>>()
    );

    // rask writes both formats (irregular chunks become regular); rask and Python read them.
    let data = array::arange(0i64, 11 * 6, 1, 66)
        .unwrap()
        .reshape(&[11, 6])
        .unwrap()
        .rechunk(vec![vec![4, 4, 3], vec![5, 1]])
        .unwrap()
        .astype(DType::F32);
    let want = data.compute::<f32>(&client).unwrap();
    for (name, format, compression) in [
        ("out2", 2, Compression::Zlib(3)),
        ("out3", 3, Compression::Gzip(1)),
        ("out3raw", 3, Compression::None),
        ("out2zstd", 2, Compression::Zstd(0)),
        ("out3zstd", 3, Compression::Zstd(0)),
    ] {
        let path = dir.path().join(name);
        data.to_zarr(
            &path,
            &client,
            ZarrOptions {
                format,
                compression,
            },
        )
        .unwrap();
        let back = array::from_zarr(&path).unwrap();
        assert_eq!(back.compute::<f32>(&client).unwrap(), want, "{name}");
        let printed = run_python(&format!(
            r#"
import zarr, numpy as np
a = zarr.open_array("{}", mode="r")
assert a.dtype == np.float32, a.dtype
print(a.shape, float(a[:].sum()), a[10, 5], a.chunks)
"#,
            path.display()
        ));
        assert_eq!(printed.trim(), "(11, 6) 2145.0 65.0 (4, 5)", "{name}");
    }

    // Broken metadata is an error naming the file and the place.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("zarr.json"),
        "{\"zarr_format\": 3,\n \"shape\": [1,}",
    )
    .unwrap();
    let error = array::from_zarr(&broken).unwrap_err().to_string();
    assert!(
        error.contains("zarr.json") && error.contains("line 2"),
        "{error}"
    );
}

/// Blosc, zarr-python 2's default compressor: every codec numcodecs builds in
/// (blosclz, lz4, lz4hc, zlib, zstd), byte-, bit- or not shuffled, in both formats,
/// read as the same values as an uncompressed copy. With a 16 KB block size a
/// 120 KB chunk spans several Blosc blocks and a short last one; random data
/// does not compress and is stored raw.
#[test]
fn rask_reads_blosc_chunks_python_zarr_writes() {
    let dir = TempDir::new("zarr-blosc");
    let root = dir.path().display().to_string();
    let client = Client::local(LocalCluster::new().workers(1)).unwrap();
    run_python(&format!(
        r#"
import zarr, numcodecs, numpy as np
from numcodecs import Blosc
rng = np.random.default_rng(1)
x = (np.arange(250 * 310).reshape(250, 310) % 97) * 0.5
x[::3] += rng.random((84, 310))
def write(name, fmt, comp, data=x, dtype="f8"):
    a = zarr.create_array(store="{root}/" + name, shape=data.shape, chunks=(100, 150),
                          dtype=dtype, zarr_format=fmt, compressors=comp)
    a[:] = data
write("raw", 2, None)
for cname in ["blosclz", "lz4", "lz4hc", "zlib", "zstd"]:
    write("v2" + cname, 2, Blosc(cname=cname, clevel=5, shuffle=Blosc.SHUFFLE))
write("v2noshuffle", 2, Blosc(cname="lz4", clevel=5, shuffle=Blosc.NOSHUFFLE))
write("v2blocks", 2, Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE, blocksize=16384))
write("v2random", 2, Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE), rng.random((250, 310)))
write("rawrandom", 2, None, zarr.open_array("{root}/v2random")[:])
write("v3lz4", 3, zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"))
write("v3zstd", 3, zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="noshuffle"))
ints = (np.arange(250 * 310).reshape(250, 310) % 1000 - 500).astype("i4")
write("ints", 2, Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE), ints, "i4")
write("rawints", 2, None, ints, "i4")
write("bits", 2, Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE, blocksize=16384))
bytes_ = (np.arange(250 * 310).reshape(250, 310) % 251).astype("u1")
write("bitbytes", 3, zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"), bytes_, "u1")
write("rawbytes", 2, None, bytes_, "u1")
odd = x[:, :151]
write("bitsodd", 2, Blosc(cname="blosclz", clevel=5, shuffle=Blosc.BITSHUFFLE, blocksize=1000), odd)
write("rawodd", 2, None, odd)
"#
    ));
    let read = |name: &str| array::from_zarr(dir.path().join(name)).unwrap();
    let want = read("raw").compute::<f64>(&client).unwrap();
    for name in [
        "v2blosclz",
        "v2lz4",
        "v2lz4hc",
        "v2zlib",
        "v2zstd",
        "v2noshuffle",
        "v2blocks",
        "bits",
        "v3lz4",
        "v3zstd",
    ] {
        assert_eq!(read(name).compute::<f64>(&client).unwrap(), want, "{name}");
    }
    assert_eq!(
        read("v2random").compute::<f64>(&client).unwrap(),
        read("rawrandom").compute::<f64>(&client).unwrap()
    );
    assert_eq!(
        read("ints").compute::<i32>(&client).unwrap(),
        read("rawints").compute::<i32>(&client).unwrap()
    );
    assert_eq!(
        read("bitbytes").compute::<u8>(&client).unwrap(),
        read("rawbytes").compute::<u8>(&client).unwrap()
    );
    assert_eq!(
        read("bitsodd").compute::<f64>(&client).unwrap(),
        read("rawodd").compute::<f64>(&client).unwrap()
    );
    // Corrupt chunks are errors (or wrong numbers), never panics: flipped and
    // truncated bytes in the first chunk of stores of every kind of stream.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for name in ["v2blosclz", "v2lz4", "v2zlib", "v2zstd", "v2blocks", "bits"] {
        let chunk = dir.path().join(name).join("0.0");
        let original = std::fs::read(&chunk).unwrap();
        for round in 0..40 {
            let mut bytes = original.clone();
            for _ in 0..=round % 4 {
                let at = next() as usize % bytes.len();
                bytes[at] ^= (next() as u8) | 1;
            }
            if round % 5 == 0 {
                bytes.truncate(next() as usize % bytes.len());
            }
            std::fs::write(&chunk, &bytes).unwrap();
            if let Err(error) = read(name).compute::<f64>(&client) {
                let error = error.to_string();
                assert!(!error.contains("panicked"), "{name}: {error}");
                errors += 1;
            }
        }
        std::fs::write(&chunk, &original).unwrap();
    }
    assert!(
        errors > 100,
        "only {errors} of 240 corrupt chunks were noticed"
    );
    eprintln!("{errors} of 240 corrupt chunks reported as errors");
    // Writing Blosc is refused up front.
    let refused = read("raw")
        .to_zarr(
            dir.path().join("out"),
            &client,
            ZarrOptions {
                format: 2,
                compression: Compression::Blosc,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(refused.contains("does not write them"), "{refused}");
}
