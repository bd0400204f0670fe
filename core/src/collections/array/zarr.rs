//! Zarr arrays (format 2 and 3) on local paths: `from_zarr` reads each block's
//! chunk file on its worker, `to_zarr` has every block write its own chunk file.
//! Chunks are stored raw or gzip/zlib-compressed; missing chunk files read as the
//! fill value. rask's blocks are the store's chunks (edge chunks are padded on
//! disk, as Zarr requires).

use super::chunk::{chunk_from_bytes, with_chunk, Chunk};
use super::dtype::{DType, Element};
use super::grid::{self, ChunkSpec};
use super::kernel::{self, chunk_at, fail, kernel, output};
use super::{Array, ArrayError};
use crate::client::Client;
use crate::graph::Key;
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
    /// The store's directory.
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

fn usizes(value: &Json, what: &str, path: &Path) -> Result<Vec<usize>, ArrayError> {
    value
        .as_array()
        .and_then(|list| {
            list.iter()
                .map(|v| v.as_u64().map(|n| n as usize))
                .collect()
        })
        .ok_or_else(|| ArrayError::io(path, format!("'{what}' is not a list of lengths")))
}

fn compression_v2(value: &Json, path: &Path) -> Result<Compression, ArrayError> {
    if value.is_null() {
        return Ok(Compression::None);
    }
    let level = value["level"].as_u64().unwrap_or(1) as u32;
    match value["id"].as_str() {
        Some("gzip") => Ok(Compression::Gzip(level)),
        Some("zlib") => Ok(Compression::Zlib(level)),
        other => Err(ArrayError::io(
            path,
            format!("compressor {other:?} is not supported (gzip, zlib or none)"),
        )),
    }
}

/// Reads a Zarr array's metadata (`zarr.json` or `.zarray`).
pub fn read_layout(path: impl AsRef<Path>) -> Result<ZarrLayout, ArrayError> {
    let path = path.as_ref();
    let root = path.display().to_string();
    let v3 = path.join("zarr.json");
    if v3.exists() {
        let text = std::fs::read_to_string(&v3).map_err(|e| ArrayError::io(&v3, e))?;
        let meta: Json = serde_json::from_str(&text).map_err(|e| {
            ArrayError::io(
                &v3,
                format!("line {}, column {}: {e}", e.line(), e.column()),
            )
        })?;
        if meta["node_type"] != "array" {
            return Err(ArrayError::io(
                &v3,
                "not an array (node_type is not \"array\")",
            ));
        }
        let data_type = meta["data_type"].as_str().unwrap_or("?");
        let dtype = v3_dtype(data_type).ok_or_else(|| {
            ArrayError::io(&v3, format!("data type {data_type:?} is not supported"))
        })?;
        let mut compression = Compression::None;
        for codec in meta["codecs"].as_array().into_iter().flatten() {
            match codec["name"].as_str() {
                Some("bytes") => {
                    if codec["configuration"]["endian"].as_str() == Some("big") {
                        return Err(ArrayError::io(&v3, "big-endian chunks are not supported"));
                    }
                }
                Some("gzip") => {
                    compression = Compression::Gzip(
                        codec["configuration"]["level"].as_u64().unwrap_or(1) as u32,
                    )
                }
                other => {
                    return Err(ArrayError::io(
                        &v3,
                        format!("codec {other:?} is not supported (bytes, gzip)"),
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
    let v2 = path.join(".zarray");
    let text = std::fs::read_to_string(&v2)
        .map_err(|e| ArrayError::io(path, format!("no zarr.json or .zarray: {e}")))?;
    let meta: Json = serde_json::from_str(&text).map_err(|e| {
        ArrayError::io(
            &v2,
            format!("line {}, column {}: {e}", e.line(), e.column()),
        )
    })?;
    let descr = meta["dtype"].as_str().unwrap_or("?");
    let dtype = DType::from_npy_descr(descr)
        .ok_or_else(|| ArrayError::io(&v2, format!("dtype {descr:?} is not supported")))?;
    if meta["order"].as_str() == Some("F") {
        return Err(ArrayError::io(
            &v2,
            "Fortran-ordered chunks are not supported",
        ));
    }
    if !meta["filters"].is_null() && meta["filters"].as_array().is_none_or(|f| !f.is_empty()) {
        return Err(ArrayError::io(&v2, "filters are not supported"));
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

fn write_layout(layout: &ZarrLayout) -> Result<(), ArrayError> {
    let dir = Path::new(&layout.path);
    std::fs::create_dir_all(dir).map_err(|e| ArrayError::io(dir, e))?;
    let fill = if layout.dtype == DType::Bool {
        json!(layout.fill != 0.0)
    } else if layout.dtype.is_float() {
        json!(layout.fill)
    } else {
        json!(layout.fill as i64)
    };
    let (file, meta) = if layout.format == 3 {
        let mut codecs = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
        if let Compression::Gzip(level) = layout.compression {
            codecs.push(json!({"name": "gzip", "configuration": {"level": level}}));
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
    let target = dir.join(file);
    std::fs::write(
        &target,
        serde_json::to_string_pretty(&meta).unwrap_or_default(),
    )
    .map_err(|e| ArrayError::io(&target, e))
}

impl ZarrLayout {
    /// The file holding chunk `index`.
    pub fn chunk_path(&self, index: &[usize]) -> PathBuf {
        let mut key: Vec<String> = index.iter().map(|i| i.to_string()).collect();
        if key.is_empty() {
            key.push("0".into());
        }
        let name = key.join(&self.separator);
        let name = if self.prefixed {
            if index.is_empty() {
                "c".to_string()
            } else {
                format!("c{}{name}", self.separator)
            }
        } else {
            name
        };
        Path::new(&self.path).join(name)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Block {
    layout: ZarrLayout,
    index: Vec<usize>,
    /// The block's shape (edge chunks are smaller than the chunk shape).
    shape: Vec<usize>,
}

fn decompress(compression: Compression, bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match compression {
        Compression::None => return Ok(bytes),
        Compression::Gzip(_) => flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out)?,
        Compression::Zlib(_) => flate2::read::ZlibDecoder::new(&bytes[..]).read_to_end(&mut out)?,
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
    /// Reads one chunk file (or the fill value when it is missing).
    ZarrRead(Block) => |b, _| {
        let file = b.layout.chunk_path(&b.index);
        let full = match std::fs::read(&file) {
            Ok(bytes) => {
                let raw = decompress(b.layout.compression, bytes)
                    .map_err(|e| fail(format!("{}: {e}", file.display())))?;
                chunk_from_bytes(b.layout.dtype, &b.layout.chunks, &raw)
                    .map_err(|e| fail(format!("{}: {e}", file.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return output(Chunk::full(b.layout.dtype, &b.shape, b.layout.fill));
            }
            Err(e) => return Err(fail(format!("{}: {e}", file.display()))),
        };
        output(if b.shape == b.layout.chunks { full } else { cut(&full, &b.shape) })
    }
}

kernel! {
    /// Writes one block as a chunk file (edge blocks padded with the fill value).
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
        let file = b.layout.chunk_path(&b.index);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(format!("{}: {e}", parent.display())))?;
        }
        let bytes = compress(b.layout.compression, &full.to_le_bytes())
            .map_err(|e| fail(format!("{}: {e}", file.display())))?;
        std::fs::write(&file, &bytes).map_err(|e| fail(format!("{}: {e}", file.display())))?;
        output(Chunk::I64(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), bytes.len() as i64)))
    }
}

/// A lazy array over a Zarr store on a local path; its blocks are the store's
/// chunks, each read on the worker that needs it.
pub fn from_zarr(path: impl AsRef<Path>) -> Result<Array, ArrayError> {
    let path = path.as_ref();
    let mut layout = read_layout(path)?;
    layout.path = std::fs::canonicalize(path)
        .map_err(|e| ArrayError::io(path, e))?
        .display()
        .to_string();
    let chunk_bytes = super::checked_bytes(&layout.chunks, layout.dtype.itemsize());
    if layout.chunks.len() != layout.shape.len()
        || layout.chunks.contains(&0)
        || super::checked_bytes(&layout.shape, layout.dtype.itemsize()).is_none()
        || chunk_bytes.is_none_or(|n| n > super::MAX_CHUNK_BYTES)
    {
        return Err(ArrayError::io(
            path,
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
    /// Writes the array as a Zarr store at `path` (a directory): the client
    /// writes the metadata, every block writes its own chunk file. Irregular
    /// chunks are first made regular (the largest chunk shape).
    pub fn to_zarr(
        &self,
        path: impl AsRef<Path>,
        client: &Client,
        options: ZarrOptions,
    ) -> Result<(), ArrayError> {
        let path = path.as_ref();
        if options.format != 2 && options.format != 3 {
            return Err(ArrayError::io(
                path,
                format!("Zarr format {} (2 or 3)", options.format),
            ));
        }
        if options.format == 3 && matches!(options.compression, Compression::Zlib(_)) {
            return Err(ArrayError::io(
                path,
                "Zarr format 3 has no zlib codec; use gzip",
            ));
        }
        let chunk_shape: Vec<usize> = self.chunksize().iter().map(|&c| c.max(1)).collect();
        let regular = self.rechunk(ChunkSpec::PerAxis(chunk_shape.clone()))?;
        std::fs::create_dir_all(path).map_err(|e| ArrayError::io(path, e))?;
        let layout = ZarrLayout {
            path: std::fs::canonicalize(path)
                .map_err(|e| ArrayError::io(path, e))?
                .display()
                .to_string(),
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
        write_layout(&layout)?;
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
