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

/// How `to_zarr` writes.
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
            compression: Compression::Gzip(1),
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

fn usizes(value: &Json, what: &str, path: &Location) -> Result<Vec<usize>, ArrayError> {
    value
        .as_array()
        .and_then(|list| {
            list.iter()
                .map(|v| v.as_u64().map(|n| n as usize))
                .collect()
        })
        .ok_or_else(|| ArrayError::at(path, format!("'{what}' is not a list of lengths")))
}

fn compression_v2(value: &Json, path: &Location) -> Result<Compression, ArrayError> {
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
fn parse_json(bytes: &[u8], file: &Location) -> Result<Json, ArrayError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ArrayError::at(
            file,
            format!("line {}, column {}: {e}", e.line(), e.column()),
        )
    })
}

/// Reads a Zarr array's metadata (`zarr.json` or `.zarray`) from a local
/// directory or an object-store prefix.
pub fn read_layout(store: impl IntoLocation) -> Result<ZarrLayout, ArrayError> {
    let store = store.into_location()?;
    let root = store.to_url()?;
    let v3 = store.join("zarr.json");
    if let Some(bytes) = v3.read()? {
        let meta = parse_json(&bytes, &v3)?;
        if meta["node_type"] != "array" {
            return Err(ArrayError::at(
                &v3,
                "not an array (node_type is not \"array\")",
            ));
        }
        let data_type = meta["data_type"].as_str().unwrap_or("?");
        let dtype = v3_dtype(data_type).ok_or_else(|| {
            ArrayError::at(&v3, format!("data type {data_type:?} is not supported"))
        })?;
        let mut compression = Compression::None;
        for codec in meta["codecs"].as_array().into_iter().flatten() {
            let config = &codec["configuration"];
            match codec["name"].as_str() {
                Some("bytes") => {
                    if config["endian"].as_str() == Some("big") {
                        return Err(ArrayError::at(&v3, "big-endian chunks are not supported"));
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
                        &v3,
                        format!("codec {other:?} is not supported (bytes, blosc, gzip, zstd)"),
                    ))
                }
            }
        }
        let encoding = &meta["chunk_key_encoding"];
        let separator = encoding["configuration"]["separator"]
            .as_str()
            .unwrap_or(if encoding["name"] == "v2" { "." } else { "/" });
        return Ok(ZarrLayout {
            path: root,
            format: 3,
            shape: usizes(&meta["shape"], "shape", &v3)?,
            chunks: usizes(
                &meta["chunk_grid"]["configuration"]["chunk_shape"],
                "chunk_shape",
                &v3,
            )?,
            dtype,
            fill: fill_value(&meta["fill_value"]),
            compression,
            separator: separator.to_string(),
            prefixed: encoding["name"] != "v2",
        });
    }
    let v2 = store.join(".zarray");
    let bytes = v2
        .read()?
        .ok_or_else(|| ArrayError::at(&store, "no zarr.json or .zarray: not a Zarr array"))?;
    let meta = parse_json(&bytes, &v2)?;
    let descr = meta["dtype"].as_str().unwrap_or("?");
    let dtype = DType::from_npy_descr(descr)
        .ok_or_else(|| ArrayError::at(&v2, format!("dtype {descr:?} is not supported")))?;
    if meta["order"].as_str() == Some("F") {
        return Err(ArrayError::at(
            &v2,
            "Fortran-ordered chunks are not supported",
        ));
    }
    if !meta["filters"].is_null() && meta["filters"].as_array().is_none_or(|f| !f.is_empty()) {
        return Err(ArrayError::at(&v2, "filters are not supported"));
    }
    Ok(ZarrLayout {
        path: root,
        format: 2,
        shape: usizes(&meta["shape"], "shape", &v2)?,
        chunks: usizes(&meta["chunks"], "chunks", &v2)?,
        dtype,
        fill: fill_value(&meta["fill_value"]),
        compression: compression_v2(&meta["compressor"], &v2)?,
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

/// Decodes a chunk that should hold `expected` bytes.
fn decompress(
    compression: Compression,
    bytes: Vec<u8>,
    expected: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(expected);
    match compression {
        Compression::None => return Ok(bytes),
        Compression::Blosc => return super::blosc::decompress(&bytes, expected),
        Compression::Gzip(_) => flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?,
        Compression::Zlib(_) => flate2::read::ZlibDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?,
        Compression::Zstd(_) => {
            out.resize(expected, 0);
            let written = ruzstd::decoding::FrameDecoder::new()
                .decode_all(&bytes, &mut out)
                .map_err(|e| format!("zstd: {e}"))?;
            out.truncate(written);
            written
        }
    };
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
        let full = match file.read().map_err(|e| fail(e.to_string()))? {
            Some(bytes) => {
                let expected = b.layout.chunks.iter().product::<usize>() * b.layout.dtype.itemsize();
                let raw = decompress(b.layout.compression, bytes, expected)
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
    let chunk_bytes = super::checked_bytes(&layout.chunks, layout.dtype.itemsize());
    if layout.chunks.len() != layout.shape.len()
        || layout.chunks.contains(&0)
        || super::checked_bytes(&layout.shape, layout.dtype.itemsize()).is_none()
        || chunk_bytes.is_none_or(|n| n > super::MAX_CHUNK_BYTES)
    {
        return Err(ArrayError::at(
            &store,
            format!(
                "chunk shape {:?} for shape {:?}",
                layout.chunks, layout.shape
            ),
        ));
    }
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
