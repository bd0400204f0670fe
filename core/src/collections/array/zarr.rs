//! Zarr arrays (format 2 and 3) on local paths and object stores (any
//! [`Location`]: `s3://`, `gs://`, `memory://`): `from_zarr` reads each block's
//! chunk on its worker, `to_zarr` has every block write its own chunk. Chunks
//! are stored raw or gzip/zlib/zstd-compressed; missing chunks read as the fill
//! value. rask's blocks are the store's chunks (edge chunks are padded in the
//! store, as Zarr requires).

use super::chunk::{chunk_from_bytes, with_chunk, Chunk};
use super::dtype::{DType, Element};
use super::grid::{self, ChunkSpec};
use super::kernel::{self, chunk_at, fail, kernel, output};
use super::{Array, ArrayError};
use crate::client::Client;
use crate::graph::Key;
use crate::io::{Location, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use std::fmt::Display;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// How chunk files are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Compression {
    /// Raw little-endian elements.
    None,
    /// gzip (Zarr's `gzip` codec, numcodecs' `GZip`), at this level.
    Gzip(u32),
    /// zlib (numcodecs' `Zlib`, Zarr format 2 only), at this level.
    Zlib(u32),
    /// Zstandard (Zarr's `zstd` codec, numcodecs' `Zstd`; Python zarr's
    /// default). Any level reads; rask writes at zstd's fastest level.
    Zstd(i32),
    /// Blosc (Zarr's `blosc` codec, numcodecs' `Blosc`; zarr-python 2's
    /// default) with blosclz, lz4, lz4hc, zlib or zstd inside, byte-, bit- or
    /// not shuffled. Read only: `to_zarr` refuses it.
    Blosc,
}

/// How `to_zarr` writes. The default is what Python's zarr 3 writes:
/// format 3 with Zstandard chunks, which every reader decodes fastest.
#[derive(Clone, Copy, Debug)]
pub struct ZarrOptions {
    /// Zarr format: 2 or 3.
    pub format: u8,
    /// Chunk compression.
    pub compression: Compression,
}

impl Default for ZarrOptions {
    fn default() -> Self {
        ZarrOptions {
            format: 3,
            compression: Compression::Zstd(0),
        }
    }
}

/// What a Zarr array's metadata says, and where its chunks live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZarrLayout {
    /// The store: a local directory or an object-store URL.
    pub path: String,
    /// 2 or 3.
    pub format: u8,
    /// Shape.
    pub shape: Vec<usize>,
    /// Chunk shape.
    pub chunks: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Value of cells in missing chunks.
    pub fill: f64,
    /// Chunk compression.
    pub compression: Compression,
    /// Between chunk indices in file names (`.` or `/`).
    pub separator: String,
    /// Whether chunk keys start with `c/` (format 3's default encoding).
    pub prefixed: bool,
}

fn v3_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "float64" => DType::F64,
        "float32" => DType::F32,
        "int64" => DType::I64,
        "int32" => DType::I32,
        "uint8" => DType::U8,
        "bool" => DType::Bool,
        _ => return None,
    })
}

fn fill_value(value: &Json) -> f64 {
    match value {
        Json::Number(n) => n.as_f64().unwrap_or(0.0),
        Json::Bool(b) => f64::from(u8::from(*b)),
        Json::String(s) if s == "NaN" => f64::NAN,
        Json::String(s) if s == "Infinity" => f64::INFINITY,
        Json::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        _ => 0.0,
    }
}

fn usizes(value: &Json, what: &str, path: &dyn Display) -> Result<Vec<usize>, ArrayError> {
    value
        .as_array()
        .and_then(|list| {
            list.iter()
                .map(|v| v.as_u64().map(|n| n as usize))
                .collect()
        })
        .ok_or_else(|| ArrayError::at(path, format!("'{what}' is not a list of lengths")))
}

fn compression_v2(value: &Json, path: &dyn Display) -> Result<Compression, ArrayError> {
    if value.is_null() {
        return Ok(Compression::None);
    }
    let level = value["level"].as_u64().unwrap_or(1) as u32;
    match value["id"].as_str() {
        Some("gzip") => Ok(Compression::Gzip(level)),
        Some("zlib") => Ok(Compression::Zlib(level)),
        Some("zstd") => Ok(Compression::Zstd(
            value["level"].as_i64().unwrap_or(0) as i32
        )),
        Some("blosc") => Ok(Compression::Blosc),
        other => Err(ArrayError::at(
            path,
            format!("compressor {other:?} is not supported (blosc, gzip, zlib, zstd or none)"),
        )),
    }
}

/// Anything that names a store: a path, or a string [`Location::parse`] reads
/// (`s3://bucket/x.zarr`, `gs://…`, `memory://…`, `file://…`, a plain path).
pub trait IntoLocation {
    /// Parses or wraps the location.
    fn into_location(self) -> Result<Location, StoreError>;
}

impl IntoLocation for &str {
    fn into_location(self) -> Result<Location, StoreError> {
        Location::parse(self)
    }
}

impl IntoLocation for &String {
    fn into_location(self) -> Result<Location, StoreError> {
        Location::parse(self)
    }
}

impl IntoLocation for String {
    fn into_location(self) -> Result<Location, StoreError> {
        Location::parse(&self)
    }
}

impl IntoLocation for &Path {
    fn into_location(self) -> Result<Location, StoreError> {
        Ok(Location::Local(self.to_path_buf()))
    }
}

impl IntoLocation for &PathBuf {
    fn into_location(self) -> Result<Location, StoreError> {
        Ok(Location::Local(self.clone()))
    }
}

impl IntoLocation for PathBuf {
    fn into_location(self) -> Result<Location, StoreError> {
        Ok(Location::Local(self))
    }
}

impl IntoLocation for Location {
    fn into_location(self) -> Result<Location, StoreError> {
        Ok(self)
    }
}

impl IntoLocation for &Location {
    fn into_location(self) -> Result<Location, StoreError> {
        Ok(self.clone())
    }
}

/// Parses a metadata document, naming the file and line of a syntax error.
fn parse_json(bytes: &[u8], file: &dyn Display) -> Result<Json, ArrayError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ArrayError::at(
            file,
            format!("line {}, column {}: {e}", e.line(), e.column()),
        )
    })
}

/// The most bytes a metadata document (`zarr.json`, `.zarray`) may have.
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

/// Reads a Zarr array's metadata (`zarr.json` or `.zarray`) from a local
/// directory or an object-store prefix.
pub fn read_layout(store: impl IntoLocation) -> Result<ZarrLayout, ArrayError> {
    let store = store.into_location()?;
    let root = store.to_url()?;
    let v3 = store.join("zarr.json");
    if let Some(bytes) = v3.read_at_most(MAX_METADATA_BYTES)? {
        return parse_layout(3, &bytes, root, &v3);
    }
    let v2 = store.join(".zarray");
    let bytes = v2
        .read_at_most(MAX_METADATA_BYTES)?
        .ok_or_else(|| ArrayError::at(&store, "no zarr.json or .zarray: not a Zarr array"))?;
    parse_layout(2, &bytes, root, &v2)
}

/// Parses and checks an array's metadata document: `zarr.json` when `format`
/// is 3, `.zarray` otherwise, read from `file`, for the array at `root`.
/// Errors name `file`.
pub fn parse_layout(
    format: u8,
    bytes: &[u8],
    root: String,
    file: &dyn Display,
) -> Result<ZarrLayout, ArrayError> {
    let layout = if format == 3 {
        parse_v3(bytes, root, file)?
    } else {
        parse_v2(bytes, root, file)?
    };
    let chunk_bytes = super::checked_bytes(&layout.chunks, layout.dtype.itemsize());
    if layout.chunks.len() != layout.shape.len()
        || layout.chunks.contains(&0)
        || super::checked_bytes(&layout.shape, layout.dtype.itemsize()).is_none()
    {
        return Err(ArrayError::at(
            file,
            format!(
                "chunk shape {:?} for shape {:?}",
                layout.chunks, layout.shape
            ),
        ));
    }
    if chunk_bytes.is_none_or(|n| n > super::MAX_CHUNK_BYTES) {
        return Err(ArrayError::at(
            file,
            format!(
                "chunks of {:?} {} elements are larger than rask's limit of {} GiB per chunk",
                layout.chunks,
                layout.dtype.name(),
                super::MAX_CHUNK_BYTES >> 30
            ),
        ));
    }
    Ok(layout)
}

fn parse_v3(bytes: &[u8], root: String, file: &dyn Display) -> Result<ZarrLayout, ArrayError> {
    let meta = parse_json(bytes, file)?;
    if meta["node_type"] != "array" {
        return Err(ArrayError::at(
            file,
            "not an array (node_type is not \"array\")",
        ));
    }
    let data_type = meta["data_type"].as_str().unwrap_or("?");
    let dtype = v3_dtype(data_type)
        .ok_or_else(|| ArrayError::at(file, format!("data type {data_type:?} is not supported")))?;
    let mut compression = Compression::None;
    for codec in meta["codecs"].as_array().into_iter().flatten() {
        let config = &codec["configuration"];
        match codec["name"].as_str() {
            Some("bytes") => {
                if config["endian"].as_str() == Some("big") {
                    return Err(ArrayError::at(file, "big-endian chunks are not supported"));
                }
            }
            Some("gzip") => {
                compression = Compression::Gzip(config["level"].as_u64().unwrap_or(1) as u32)
            }
            Some("zstd") => {
                compression = Compression::Zstd(config["level"].as_i64().unwrap_or(0) as i32)
            }
            Some("blosc") => compression = Compression::Blosc,
            other => {
                return Err(ArrayError::at(
                    file,
                    format!("codec {other:?} is not supported (bytes, blosc, gzip, zstd)"),
                ))
            }
        }
    }
    let encoding = &meta["chunk_key_encoding"];
    let separator = encoding["configuration"]["separator"]
        .as_str()
        .unwrap_or(if encoding["name"] == "v2" { "." } else { "/" });
    Ok(ZarrLayout {
        path: root,
        format: 3,
        shape: usizes(&meta["shape"], "shape", file)?,
        chunks: usizes(
            &meta["chunk_grid"]["configuration"]["chunk_shape"],
            "chunk_shape",
            file,
        )?,
        dtype,
        fill: fill_value(&meta["fill_value"]),
        compression,
        separator: separator.to_string(),
        prefixed: encoding["name"] != "v2",
    })
}

fn parse_v2(bytes: &[u8], root: String, file: &dyn Display) -> Result<ZarrLayout, ArrayError> {
    let meta = parse_json(bytes, file)?;
    let descr = meta["dtype"].as_str().unwrap_or("?");
    let dtype = DType::from_npy_descr(descr)
        .ok_or_else(|| ArrayError::at(file, format!("dtype {descr:?} is not supported")))?;
    if meta["order"].as_str() == Some("F") {
        return Err(ArrayError::at(
            file,
            "Fortran-ordered chunks are not supported",
        ));
    }
    if !meta["filters"].is_null() && meta["filters"].as_array().is_none_or(|f| !f.is_empty()) {
        return Err(ArrayError::at(file, "filters are not supported"));
    }
    Ok(ZarrLayout {
        path: root,
        format: 2,
        shape: usizes(&meta["shape"], "shape", file)?,
        chunks: usizes(&meta["chunks"], "chunks", file)?,
        dtype,
        fill: fill_value(&meta["fill_value"]),
        compression: compression_v2(&meta["compressor"], file)?,
        separator: meta["dimension_separator"]
            .as_str()
            .unwrap_or(".")
            .to_string(),
        prefixed: false,
    })
}

fn write_layout(store: &Location, layout: &ZarrLayout) -> Result<(), ArrayError> {
    let fill = if layout.dtype == DType::Bool {
        json!(layout.fill != 0.0)
    } else if layout.dtype.is_float() {
        json!(layout.fill)
    } else {
        json!(layout.fill as i64)
    };
    let (file, meta) = if layout.format == 3 {
        let mut codecs = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
        match layout.compression {
            Compression::Gzip(level) => {
                codecs.push(json!({"name": "gzip", "configuration": {"level": level}}))
            }
            Compression::Zstd(level) => codecs.push(
                json!({"name": "zstd", "configuration": {"level": level, "checksum": false}}),
            ),
            Compression::None | Compression::Zlib(_) | Compression::Blosc => {}
        }
        (
            "zarr.json",
            json!({
                "zarr_format": 3,
                "node_type": "array",
                "shape": layout.shape,
                "data_type": layout.dtype.name(),
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": layout.chunks}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": fill,
                "codecs": codecs,
                "attributes": {},
            }),
        )
    } else {
        let compressor = match layout.compression {
            Compression::None => Json::Null,
            Compression::Gzip(level) => json!({"id": "gzip", "level": level}),
            Compression::Zlib(level) => json!({"id": "zlib", "level": level}),
            Compression::Zstd(level) => json!({"id": "zstd", "level": level}),
            Compression::Blosc => Json::Null,
        };
        (
            ".zarray",
            json!({
                "zarr_format": 2,
                "shape": layout.shape,
                "chunks": layout.chunks,
                "dtype": layout.dtype.npy_descr(),
                "compressor": compressor,
                "fill_value": fill,
                "order": "C",
                "filters": null,
                "dimension_separator": layout.separator,
            }),
        )
    };
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
    Ok(store.join(file).write(text.into_bytes())?)
}

impl ZarrLayout {
    /// The key of chunk `index` inside the store (`c/0/1`, `0.1`, …).
    pub fn chunk_key(&self, index: &[usize]) -> String {
        let mut key: Vec<String> = index.iter().map(|i| i.to_string()).collect();
        if key.is_empty() {
            key.push("0".into());
        }
        let name = key.join(&self.separator);
        if !self.prefixed {
            name
        } else if index.is_empty() {
            "c".to_string()
        } else {
            format!("c{}{name}", self.separator)
        }
    }

    /// Where chunk `index` lives.
    pub fn chunk_location(&self, index: &[usize]) -> Result<Location, StoreError> {
        Ok(Location::parse(&self.path)?.join(&self.chunk_key(index)))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Block {
    layout: ZarrLayout,
    index: Vec<usize>,
    /// The block's shape (edge chunks are smaller than the chunk shape).
    shape: Vec<usize>,
}

/// The most bytes a stored chunk of `expected` bytes may take: compressed
/// data that does not shrink grows by a little framing, never by much.
fn max_stored(expected: usize) -> u64 {
    expected as u64 + expected as u64 / 16 + (64 << 10)
}

/// Decodes a chunk that must hold exactly `expected` bytes; no decoder writes
/// more than that, whatever the stream says.
pub fn decompress_chunk(
    compression: Compression,
    bytes: Vec<u8>,
    expected: usize,
) -> Result<Vec<u8>, String> {
    let out = match compression {
        Compression::None => bytes,
        Compression::Blosc => super::blosc::decompress(&bytes, expected)?,
        Compression::Gzip(_) => inflate(flate2::read::GzDecoder::new(&bytes[..]), expected)?,
        Compression::Zlib(_) => inflate(flate2::read::ZlibDecoder::new(&bytes[..]), expected)?,
        Compression::Zstd(_) => {
            let mut out = vec![0u8; expected];
            let written = ruzstd::decoding::FrameDecoder::new()
                .decode_all(&bytes, &mut out)
                .map_err(|e| format!("zstd: {e}"))?;
            out.truncate(written);
            out
        }
    };
    if out.len() != expected {
        return Err(format!(
            "the chunk decodes to {} bytes; its metadata says {expected}",
            out.len()
        ));
    }
    Ok(out)
}

/// Reads a deflate stream, stopping one byte past `expected` (enough to tell
/// that it is too long).
fn inflate(decoder: impl Read, expected: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(expected);
    decoder
        .take(expected as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn compress(compression: Compression, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(bytes.to_vec()),
        Compression::Gzip(level) => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level.min(9)));
            encoder.write_all(bytes)?;
            encoder.finish()
        }
        Compression::Zlib(level) => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level.min(9)));
            encoder.write_all(bytes)?;
            encoder.finish()
        }
        Compression::Zstd(_) => Ok(ruzstd::encoding::compress_to_vec(
            bytes,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
        Compression::Blosc => Err(std::io::Error::other(
            "rask reads Blosc chunks but does not write them (gzip, zlib, zstd or none)",
        )),
    }
}

fn cut(chunk: &Chunk, shape: &[usize]) -> Chunk {
    let region: Vec<ndarray::SliceInfoElem> = shape
        .iter()
        .map(|&n| ndarray::SliceInfoElem::from(0..n))
        .collect();
    with_chunk!(chunk, a => Element::wrap(a.slice(region.as_slice()).to_owned()))
}

kernel! {
    /// Reads one chunk (or the fill value when it is missing).
    ZarrRead(Block) => |b, _| {
        let file = b.layout.chunk_location(&b.index).map_err(|e| fail(e.to_string()))?;
        let expected = b.layout.chunks.iter().product::<usize>() * b.layout.dtype.itemsize();
        let full = match file.read_at_most(max_stored(expected)).map_err(|e| fail(e.to_string()))? {
            Some(bytes) => {
                let raw = decompress_chunk(b.layout.compression, bytes, expected)
                    .map_err(|e| fail(format!("{file}: {e}")))?;
                chunk_from_bytes(b.layout.dtype, &b.layout.chunks, &raw)
                    .map_err(|e| fail(format!("{file}: {e}")))?
            }
            None => return output(Chunk::full(b.layout.dtype, &b.shape, b.layout.fill)),
        };
        output(if b.shape == b.layout.chunks { full } else { cut(&full, &b.shape) })
    }
}

kernel! {
    /// Writes one block as a chunk (edge blocks padded with the fill value).
    ZarrWrite(Block) => |b, inputs| {
        let chunk = chunk_at(inputs, 0)?.astype(b.layout.dtype);
        let full = if chunk.shape() == b.layout.chunks.as_slice() {
            chunk
        } else {
            let mut padded = Chunk::full(b.layout.dtype, &b.layout.chunks, b.layout.fill);
            let region: Vec<ndarray::SliceInfoElem> =
                chunk.shape().iter().map(|&n| ndarray::SliceInfoElem::from(0..n)).collect();
            with_chunk!(&mut padded, o => {
                let piece = Element::view(&chunk).ok_or_else(|| fail("zarr: mixed types"))?;
                o.slice_mut(region.as_slice()).assign(piece);
            });
            padded
        };
        let file = b.layout.chunk_location(&b.index).map_err(|e| fail(e.to_string()))?;
        let bytes = compress(b.layout.compression, &full.to_le_bytes())
            .map_err(|e| fail(format!("{file}: {e}")))?;
        let written = bytes.len() as i64;
        file.write(bytes).map_err(|e| fail(e.to_string()))?;
        output(Chunk::I64(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), written)))
    }
}

/// A lazy array over a Zarr store (a local directory, or a prefix in S3, GCS
/// or memory); its blocks are the store's chunks, each read on the worker that
/// needs it.
pub fn from_zarr(store: impl IntoLocation) -> Result<Array, ArrayError> {
    let store = store.into_location()?;
    let layout = read_layout(&store)?;
    let chunks = grid::normalize(
        &ChunkSpec::PerAxis(layout.chunks.clone()),
        &layout.shape,
        layout.dtype.itemsize(),
    )?;
    let block_chunks = chunks.clone();
    Ok(Array::build(
        "from-zarr",
        layout.shape.clone(),
        chunks,
        layout.dtype,
        |name, index| {
            let params = kernel::params(Block {
                layout: layout.clone(),
                index: index.to_vec(),
                shape: grid::block_shape(&block_chunks, index),
            });
            ZarrRead::node(Key::new(name).indexed(index), &params, Vec::new())
        },
    ))
}

impl Array {
    /// Writes the array as a Zarr store at `store` (a local directory, or a
    /// prefix such as `s3://bucket/x.zarr`): the client writes the metadata,
    /// every block writes its own chunk. Irregular chunks are first made
    /// regular (the largest chunk shape).
    pub fn to_zarr(
        &self,
        store: impl IntoLocation,
        client: &Client,
        options: ZarrOptions,
    ) -> Result<(), ArrayError> {
        let store = store.into_location()?;
        if options.format != 2 && options.format != 3 {
            return Err(ArrayError::at(
                &store,
                format!("Zarr format {} (2 or 3)", options.format),
            ));
        }
        if options.compression == Compression::Blosc {
            return Err(ArrayError::at(
                &store,
                "rask reads Blosc chunks but does not write them; use gzip or zstd",
            ));
        }
        if options.format == 3 && matches!(options.compression, Compression::Zlib(_)) {
            return Err(ArrayError::at(
                &store,
                "Zarr format 3 has no zlib codec; use gzip or zstd",
            ));
        }
        let chunk_shape: Vec<usize> = self.chunksize().iter().map(|&c| c.max(1)).collect();
        let regular = self.rechunk(ChunkSpec::PerAxis(chunk_shape.clone()))?;
        if let Some(dir) = store.as_path() {
            std::fs::create_dir_all(dir).map_err(|e| ArrayError::io(dir, e))?;
        }
        let layout = ZarrLayout {
            path: store.to_url()?,
            format: options.format,
            shape: self.shape().to_vec(),
            chunks: chunk_shape,
            dtype: self.dtype(),
            fill: 0.0,
            compression: options.compression,
            separator: if options.format == 3 {
                "/".into()
            } else {
                ".".into()
            },
            prefixed: options.format == 3,
        };
        write_layout(&store, &layout)?;
        let chunks = regular.chunks().to_vec();
        regular.for_each_block(client, "to-zarr", |key, index, block| {
            let params = kernel::params(Block {
                layout: layout.clone(),
                index: index.to_vec(),
                shape: grid::block_shape(&chunks, index),
            });
            ZarrWrite::node(key, &params, vec![block.clone()])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        compress(Compression::Gzip(9), bytes).unwrap()
    }

    #[test]
    fn a_chunk_that_inflates_past_its_size_is_an_error_not_an_allocation() {
        // 64 MiB of zeros compress to ~64 KiB; the metadata says 1 KiB.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        let err = decompress_chunk(Compression::Gzip(1), bomb, 1024).unwrap_err();
        assert!(err.contains("metadata says 1024"), "{err}");
        let zstd = compress(Compression::Zstd(0), &vec![7u8; 1 << 20]).unwrap();
        let err = decompress_chunk(Compression::Zstd(0), zstd, 1000).unwrap_err();
        assert!(err.contains("zstd") || err.contains("1000"), "{err}");
        let short = decompress_chunk(Compression::None, vec![1, 2, 3], 8).unwrap_err();
        assert!(short.contains("3 bytes"), "{short}");
        let good = decompress_chunk(Compression::Gzip(1), gzip(&[5u8; 4096]), 4096).unwrap();
        assert_eq!(good, vec![5u8; 4096]);
    }

    #[test]
    fn metadata_announcing_huge_chunks_is_refused_naming_the_file() {
        let meta = br#"{"zarr_format": 2, "shape": [1000000, 1000000], "chunks": [100000, 100000],
            "dtype": "<f8", "compressor": null, "fill_value": 0, "order": "C", "filters": null}"#;
        let err = parse_layout(2, meta, "x.zarr".into(), &"x.zarr/.zarray").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("x.zarr/.zarray") && text.contains("2 GiB"),
            "{text}"
        );
        let broken = parse_layout(3, b"{\"node_type\": ", "y".into(), &"y/zarr.json").unwrap_err();
        assert!(broken.to_string().contains("y/zarr.json"), "{broken}");
    }

    #[test]
    fn a_stored_chunk_larger_than_a_chunk_can_be_is_not_read() {
        let dir = std::env::temp_dir().join(format!("rask-zarr-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("0");
        std::fs::write(&file, vec![0u8; 200_000]).unwrap();
        let err = Location::Local(file.clone())
            .read_at_most(max_stored(1024))
            .unwrap_err();
        assert!(err.to_string().contains("200000 bytes"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
