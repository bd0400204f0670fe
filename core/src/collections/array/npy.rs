//! NumPy's `.npy` files: lazy chunked reads (each block reads only its own
//! bytes), parallel writes (each block writes its own bytes into a file the
//! client sized first), and eager helpers. Workers must see the same path.

use super::chunk::{chunk_from_bytes, Chunk};
use super::dtype::DType;
use super::grid::{self, ChunkSpec};
use super::kernel::{self, fail, kernel, output};
use super::{Array, ArrayError};
use crate::client::Client;
use crate::graph::Key;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// What a `.npy` header says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Where the elements start in the file.
    pub data_offset: u64,
    /// Whether the elements are in Fortran (column-major) order, as `np.save`
    /// writes transposed and column-major arrays.
    #[serde(default)]
    pub fortran_order: bool,
}

/// The longest `.npy` header accepted.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Reads and checks a `.npy` header.
pub fn read_header(path: &Path) -> Result<NpyHeader, ArrayError> {
    let mut file = std::fs::File::open(path).map_err(|e| ArrayError::io(path, e))?;
    let mut head = vec![0u8; 12];
    let got = read_up_to(&mut file, &mut head).map_err(|e| ArrayError::io(path, e))?;
    head.truncate(got);
    let (len, start) = header_extent(&head).map_err(|e| ArrayError::io(path, e))?;
    let mut rest = vec![0u8; (start + len) as usize - head.len().min((start + len) as usize)];
    file.read_exact(&mut rest)
        .map_err(|e| ArrayError::io(path, format!("the file ends inside its header: {e}")))?;
    head.extend_from_slice(&rest);
    parse_header(&head).map_err(|e| ArrayError::io(path, e))
}

fn read_up_to(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The header text's length and where it starts, from the first 10 or 12 bytes.
fn header_extent(bytes: &[u8]) -> Result<(u64, u64), String> {
    let prefix = bytes.get(..10).ok_or_else(|| {
        format!(
            "not a .npy file: {} bytes is shorter than its prefix",
            bytes.len()
        )
    })?;
    if &prefix[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let (len, start) = match prefix[6] {
        1 => (u64::from(u16::from_le_bytes([prefix[8], prefix[9]])), 10u64),
        2 | 3 => {
            let more = bytes
                .get(10..12)
                .ok_or_else(|| "the file ends inside its header".to_string())?;
            (
                u64::from(u32::from_le_bytes([prefix[8], prefix[9], more[0], more[1]])),
                12u64,
            )
        }
        v => return Err(format!(".npy version {v} is not supported")),
    };
    if len > MAX_HEADER_BYTES {
        return Err(format!(
            "a {len}-byte .npy header is too long (at most {MAX_HEADER_BYTES})"
        ));
    }
    Ok((len, start))
}

/// Parses a `.npy` file's prefix and header (the file's first bytes; what
/// follows the header is ignored).
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, String> {
    let (len, start) = header_extent(bytes)?;
    let text = bytes
        .get(start as usize..(start + len) as usize)
        .ok_or_else(|| "the file ends inside its header".to_string())?;
    let text = String::from_utf8_lossy(text);
    let field = |name: &str| -> Result<String, String> {
        let at = text
            .find(&format!("'{name}'"))
            .ok_or_else(|| format!("the header has no '{name}'"))?;
        let rest = &text[at + name.len() + 2..];
        let rest = rest
            .trim_start()
            .strip_prefix(':')
            .unwrap_or(rest)
            .trim_start();
        Ok(rest.to_string())
    };
    let descr_text = field("descr")?;
    let descr = descr_text
        .strip_prefix('\'')
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| "cannot read 'descr'".to_string())?;
    let dtype = DType::from_npy_descr(descr)
        .ok_or_else(|| format!("element type {descr:?} is not supported"))?;
    let fortran_order = field("fortran_order")?.starts_with("True");
    let shape_text = field("shape")?;
    let inside = shape_text
        .strip_prefix('(')
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| "cannot read 'shape'".to_string())?;
    let shape = inside
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad shape ({inside}): {e}"))?;
    if super::checked_bytes(&shape, dtype.itemsize()).is_none() {
        return Err(format!("shape {shape:?} is too large"));
    }
    Ok(NpyHeader {
        dtype,
        shape,
        data_offset: start + len,
        fortran_order,
    })
}

/// A version 1.0 header, padded so the data starts on a 64-byte boundary.
fn header_bytes(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        dtype.npy_descr()
    );
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// A block's region of the file: runs along the last axis.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Region {
    path: String,
    header: NpyHeader,
    offset: Vec<usize>,
    shape: Vec<usize>,
}

/// Calls `f(byte offset in the data, element count, position in the block)`
/// for each contiguous run of the region.
///
/// A Fortran-ordered file is the C-ordered file of the array with its axes
/// reversed, so its runs go along the first axis and the positions are those
/// of the block in Fortran order.
fn for_each_run(
    r: &Region,
    mut f: impl FnMut(u64, usize, usize) -> Result<(), String>,
) -> Result<(), String> {
    let in_file = |v: &[usize]| -> Vec<usize> {
        if r.header.fortran_order {
            v.iter().rev().copied().collect()
        } else {
            v.to_vec()
        }
    };
    let (array_shape, offset, shape) = (
        in_file(&r.header.shape),
        in_file(&r.offset),
        in_file(&r.shape),
    );
    let ndim = shape.len();
    let item = r.header.dtype.itemsize() as u64;
    if ndim == 0 {
        return f(0, 1, 0);
    }
    let run = shape[ndim - 1];
    let outer: Vec<usize> = shape[..ndim - 1].to_vec();
    let mut strides = vec![1u64; ndim];
    for a in (0..ndim - 1).rev() {
        strides[a] = strides[a + 1] * array_shape[a + 1] as u64;
    }
    for (n, index) in grid::block_indices(&outer).iter().enumerate() {
        let flat: u64 = index
            .iter()
            .enumerate()
            .map(|(a, &i)| (offset[a] + i) as u64 * strides[a])
            .sum::<u64>()
            + offset[ndim - 1] as u64;
        f(flat * item, run, n * run)?;
    }
    Ok(())
}

/// A block from its elements' bytes in the file's order (Fortran order:
/// rebuilt with reversed axes, then laid out in C order).
fn block_from_bytes(header: &NpyHeader, shape: &[usize], bytes: &[u8]) -> Result<Chunk, String> {
    if !header.fortran_order {
        return chunk_from_bytes(header.dtype, shape, bytes);
    }
    let reversed: Vec<usize> = shape.iter().rev().copied().collect();
    let chunk = chunk_from_bytes(header.dtype, &reversed, bytes)?;
    Ok(super::chunk::with_chunk!(chunk, a => {
        super::dtype::Element::wrap(a.reversed_axes().as_standard_layout().into_owned())
    }))
}

kernel! {
    /// Reads one block's bytes from a `.npy` file.
    NpyRead(Region) => |r, _| {
        let file = std::fs::File::open(&r.path).map_err(|e| fail(format!("{}: {e}", r.path)))?;
        let item = r.header.dtype.itemsize();
        let total: usize = r.shape.iter().product();
        let mut bytes = vec![0u8; total * item];
        for_each_run(r, |at, len, pos| {
            file.read_exact_at(&mut bytes[pos * item..(pos + len) * item], r.header.data_offset + at)
                .map_err(|e| format!("{}: {e}", r.path))
        })
        .map_err(fail)?;
        output(block_from_bytes(&r.header, &r.shape, &bytes).map_err(fail)?)
    }
}

kernel! {
    /// Writes one block's bytes into a `.npy` file; returns how many it wrote.
    NpyWrite(Region) => |r, inputs| {
        let chunk = kernel::chunk_at(inputs, 0)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&r.path)
            .map_err(|e| fail(format!("{}: {e}", r.path)))?;
        let chunk = chunk.astype(r.header.dtype);
        let bytes = chunk.to_le_bytes();
        let item = r.header.dtype.itemsize();
        for_each_run(r, |at, len, pos| {
            file.write_all_at(&bytes[pos * item..(pos + len) * item], r.header.data_offset + at)
                .map_err(|e| format!("{}: {e}", r.path))
        })
        .map_err(fail)?;
        output(Chunk::I64(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), bytes.len() as i64)))
    }
}

/// A lazy array over a `.npy` file; each block reads only its own bytes.
pub fn from_npy(path: impl AsRef<Path>, chunks: impl Into<ChunkSpec>) -> Result<Array, ArrayError> {
    let path = path.as_ref();
    let header = read_header(path)?;
    let length = std::fs::metadata(path)
        .map_err(|e| ArrayError::io(path, e))?
        .len();
    let need = super::checked_bytes(&header.shape, header.dtype.itemsize())
        .and_then(|n| n.checked_add(header.data_offset))
        .ok_or_else(|| ArrayError::io(path, format!("shape {:?} is too large", header.shape)))?;
    if length < need {
        return Err(ArrayError::io(
            path,
            format!("the file has {length} bytes; its header needs {need}"),
        ));
    }
    let chunks = grid::normalize(&chunks.into(), &header.shape, header.dtype.itemsize())?;
    let absolute = std::fs::canonicalize(path).map_err(|e| ArrayError::io(path, e))?;
    let block_chunks = chunks.clone();
    Ok(Array::build(
        "from-npy",
        header.shape.clone(),
        chunks,
        header.dtype,
        |name, index| {
            let params = kernel::params(Region {
                path: absolute.display().to_string(),
                header: header.clone(),
                offset: grid::block_offset(&block_chunks, index),
                shape: grid::block_shape(&block_chunks, index),
            });
            NpyRead::node(Key::new(name).indexed(index), &params, Vec::new())
        },
    ))
}

/// Reads a whole `.npy` file into a chunk.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Chunk, ArrayError> {
    let path = path.as_ref();
    let header = read_header(path)?;
    let bytes = std::fs::read(path).map_err(|e| ArrayError::io(path, e))?;
    let data = bytes
        .get(header.data_offset as usize..)
        .ok_or_else(|| ArrayError::io(path, "the file ends inside its header"))?;
    let need = super::checked_bytes(&header.shape, header.dtype.itemsize())
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| ArrayError::io(path, format!("shape {:?} is too large", header.shape)))?;
    let data = data.get(..need).ok_or_else(|| {
        ArrayError::io(
            path,
            format!("{} data bytes; the header needs {need}", data.len()),
        )
    })?;
    block_from_bytes(&header, &header.shape, data).map_err(|e| ArrayError::io(path, e))
}

/// Writes a chunk to a `.npy` file.
pub fn write_npy(path: impl AsRef<Path>, chunk: &Chunk) -> Result<(), ArrayError> {
    let path = path.as_ref();
    let mut file = std::fs::File::create(path).map_err(|e| ArrayError::io(path, e))?;
    file.write_all(&header_bytes(chunk.dtype(), chunk.shape()))
        .and_then(|()| file.write_all(&chunk.to_le_bytes()))
        .map_err(|e| ArrayError::io(path, e))
}

impl Array {
    /// Writes the array to a `.npy` file: the client writes the header and
    /// sizes the file, then every block writes its own bytes on its worker.
    pub fn to_npy(&self, path: impl AsRef<Path>, client: &Client) -> Result<(), ArrayError> {
        let path = path.as_ref();
        let head = header_bytes(self.dtype(), self.shape());
        let total = head.len() as u64 + self.nbytes() as u64;
        {
            let mut file = std::fs::File::create(path).map_err(|e| ArrayError::io(path, e))?;
            file.write_all(&head).map_err(|e| ArrayError::io(path, e))?;
            file.set_len(total).map_err(|e| ArrayError::io(path, e))?;
        }
        let absolute = std::fs::canonicalize(path).map_err(|e| ArrayError::io(path, e))?;
        let header = NpyHeader {
            dtype: self.dtype(),
            shape: self.shape().to_vec(),
            data_offset: head.len() as u64,
            fortran_order: false,
        };
        let chunks = self.chunks().to_vec();
        self.for_each_block(client, "to-npy", |key, index, block| {
            let params = kernel::params(Region {
                path: absolute.display().to_string(),
                header: header.clone(),
                offset: grid::block_offset(&chunks, index),
                shape: grid::block_shape(&chunks, index),
            });
            NpyWrite::node(key, &params, vec![block.clone()])
        })
    }
}
