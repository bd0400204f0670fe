//! Reading Blosc-compressed Zarr chunks (numcodecs' `Blosc`, the default
//! compressor of zarr-python 2 and of many stores written with it).
//!
//! A Blosc buffer is a 16-byte header, then either the raw bytes or a table of
//! block offsets and the blocks. Each block is cut into `typesize` streams (or
//! one), each compressed with blosclz, LZ4, zlib or Zstandard, and the block's
//! bytes may be byte- or bit-shuffled. The decoders here check every length and
//! offset: a corrupt or hostile chunk is an error, never a panic.

use std::io::Read;

const HEADER: usize = 16;
const SHUFFLE: u8 = 0x1;
const MEMCPYED: u8 = 0x2;
const BITSHUFFLE: u8 = 0x4;
const DONT_SPLIT: u8 = 0x10;
/// Blocks are split into streams only up to this type size.
const MAX_SPLITS: usize = 16;
/// ... and only when each stream would hold at least this many bytes.
const MIN_BUFFER: usize = 128;
/// blosclz's longest near match distance; far matches add it.
const MAX_DISTANCE: usize = 8191;

fn u32_at(bytes: &[u8], at: usize) -> Result<usize, String> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| format!("blosc: truncated at byte {at}"))
}

/// The uncompressed bytes of one Blosc buffer, which must be `expected` long.
pub(crate) fn decompress(bytes: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    if bytes.len() < HEADER {
        return Err(format!(
            "blosc: {} bytes is shorter than the header",
            bytes.len()
        ));
    }
    let flags = bytes[2];
    let typesize = usize::from(bytes[3]).max(1);
    let nbytes = u32_at(bytes, 4)?;
    let blocksize = u32_at(bytes, 8)?;
    if nbytes != expected {
        return Err(format!("blosc: {nbytes} bytes inside, expected {expected}"));
    }
    if flags & MEMCPYED != 0 {
        return bytes
            .get(HEADER..HEADER + nbytes)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "blosc: raw data shorter than the header says".to_string());
    }
    if nbytes == 0 {
        return Ok(Vec::new());
    }
    if blocksize == 0 {
        return Err("blosc: a block size of 0".into());
    }
    let codec = flags >> 5;
    let nblocks = nbytes.div_ceil(blocksize);
    let mut out = vec![0u8; nbytes];
    // No block is larger than the buffer (the header's block size is not trusted).
    let mut block = Vec::with_capacity(blocksize.min(nbytes));
    for (j, target) in out.chunks_mut(blocksize).enumerate() {
        let start = u32_at(bytes, HEADER + 4 * j)?;
        let leftover = j == nblocks - 1 && nbytes % blocksize != 0;
        let bsize = target.len();
        let split = flags & DONT_SPLIT == 0
            && typesize <= MAX_SPLITS
            && bsize / typesize >= MIN_BUFFER
            && !leftover;
        let nsplits = if split { typesize } else { 1 };
        let neblock = bsize / nsplits;
        block.clear();
        let mut at = start;
        for _ in 0..nsplits {
            let cbytes = u32_at(bytes, at)?;
            at += 4;
            let stream = bytes
                .get(at..at.saturating_add(cbytes))
                .ok_or_else(|| format!("blosc: block {j} runs past the end"))?;
            at += cbytes;
            if cbytes == neblock {
                block.extend_from_slice(stream);
            } else {
                let before = block.len();
                decode_stream(codec, stream, neblock, &mut block)?;
                if block.len() - before != neblock {
                    return Err(format!(
                        "blosc: block {j} decompressed to {} bytes, expected {neblock}",
                        block.len() - before
                    ));
                }
            }
        }
        if block.len() != bsize {
            return Err(format!(
                "blosc: block {j} has {} bytes, expected {bsize}",
                block.len()
            ));
        }
        if flags & SHUFFLE != 0 && typesize > 1 {
            unshuffle(typesize, &block, target);
        } else if flags & BITSHUFFLE != 0 {
            bit_unshuffle(typesize, &block, target);
        } else {
            target.copy_from_slice(&block);
        }
    }
    Ok(out)
}

/// Appends the `expected` bytes of one compressed stream to `out`.
fn decode_stream(
    codec: u8,
    stream: &[u8],
    expected: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match codec {
        0 => blosclz(stream, expected, out),
        1 => lz4_block(stream, expected, out),
        3 => flate2::read::ZlibDecoder::new(stream)
            .take(expected as u64 + 1)
            .read_to_end(out)
            .map(drop)
            .map_err(|e| format!("blosc zlib: {e}")),
        4 => {
            let before = out.len();
            out.resize(before + expected, 0);
            let written = ruzstd::decoding::FrameDecoder::new()
                .decode_all(stream, &mut out[before..])
                .map_err(|e| format!("blosc zstd: {e}"))?;
            out.truncate(before + written);
            Ok(())
        }
        2 => {
            Err("blosc: snappy streams are not supported (blosclz, lz4, lz4hc, zlib, zstd)".into())
        }
        other => Err(format!("blosc: unknown codec {other}")),
    }
}

/// Copies `len` bytes that start `distance` bytes back; they may overlap the
/// bytes being written (a run).
fn copy_match(out: &mut Vec<u8>, base: usize, distance: usize, len: usize) -> Result<(), String> {
    let written = out.len() - base;
    if distance == 0 || distance > written {
        return Err("blosc: a match reaches before the stream".into());
    }
    let from = out.len() - distance;
    if distance >= len {
        out.extend_from_within(from..from + len);
    } else {
        for k in 0..len {
            out.push(out[from + k]);
        }
    }
    Ok(())
}

/// blosclz (a FastLZ relative): literal runs of up to 32 bytes, and matches
/// of 3+ bytes up to 8191 bytes back, or farther with a 16-bit extension.
fn blosclz(input: &[u8], expected: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let base = out.len();
    let limit = base + expected;
    let truncated = || "blosclz: truncated stream".to_string();
    let mut ip = 0;
    let mut ctrl = usize::from(*input.first().ok_or_else(truncated)? & 31);
    ip += 1;
    loop {
        if ctrl >= 32 {
            let mut len = (ctrl >> 5) - 1;
            let mut ofs = (ctrl & 31) << 8;
            if len == 6 {
                loop {
                    let code = *input.get(ip).ok_or_else(truncated)?;
                    ip += 1;
                    len += usize::from(code);
                    if code != 255 {
                        break;
                    }
                }
            }
            let code = usize::from(*input.get(ip).ok_or_else(truncated)?);
            ip += 1;
            let mut distance = ofs + code;
            if code == 255 && ofs == 31 << 8 {
                let hi = usize::from(*input.get(ip).ok_or_else(truncated)?);
                let lo = usize::from(*input.get(ip + 1).ok_or_else(truncated)?);
                ip += 2;
                ofs = (hi << 8) + lo;
                distance = ofs + MAX_DISTANCE;
            }
            let len = len + 3;
            if out.len() + len > limit {
                return Err("blosclz: output longer than the block".into());
            }
            copy_match(out, base, distance + 1, len)?;
        } else {
            let len = ctrl + 1;
            let literal = input.get(ip..ip + len).ok_or_else(truncated)?;
            if out.len() + len > limit {
                return Err("blosclz: output longer than the block".into());
            }
            out.extend_from_slice(literal);
            ip += len;
        }
        match input.get(ip) {
            Some(&next) => {
                ctrl = usize::from(next);
                ip += 1;
            }
            None => return Ok(()),
        }
    }
}

/// Reads an LZ4 length: `nibble`, plus bytes while they are 255.
fn lz4_length(input: &[u8], ip: &mut usize, nibble: usize) -> Result<usize, String> {
    let mut len = nibble;
    if nibble == 15 {
        loop {
            let byte = *input.get(*ip).ok_or("lz4: truncated length")?;
            *ip += 1;
            len += usize::from(byte);
            if byte != 255 {
                break;
            }
        }
    }
    Ok(len)
}

/// One LZ4 block (the block format, no frame): sequences of literals then a
/// match of 4+ bytes up to 65535 bytes back; the last sequence is literals only.
fn lz4_block(input: &[u8], expected: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let base = out.len();
    let limit = base + expected;
    let mut ip = 0;
    while ip < input.len() {
        let token = input[ip];
        ip += 1;
        let literals = lz4_length(input, &mut ip, usize::from(token >> 4))?;
        let bytes = input
            .get(ip..ip + literals)
            .ok_or("lz4: truncated literals")?;
        if out.len() + literals > limit {
            return Err("lz4: output longer than the block".into());
        }
        out.extend_from_slice(bytes);
        ip += literals;
        if ip == input.len() {
            break;
        }
        let offset = input.get(ip..ip + 2).ok_or("lz4: truncated offset")?;
        let distance = usize::from(u16::from_le_bytes([offset[0], offset[1]]));
        ip += 2;
        let len = lz4_length(input, &mut ip, usize::from(token & 15))? + 4;
        if out.len() + len > limit {
            return Err("lz4: output longer than the block".into());
        }
        copy_match(out, base, distance, len)?;
    }
    Ok(())
}

/// Undoes Blosc's byte shuffle: byte `j` of every element was stored in the
/// `j`-th stretch; trailing bytes that fill no whole element stay in place.
fn unshuffle(typesize: usize, shuffled: &[u8], out: &mut [u8]) {
    let elements = shuffled.len() / typesize;
    for (j, stretch) in shuffled.chunks(elements.max(1)).take(typesize).enumerate() {
        if elements == 0 {
            break;
        }
        for (i, &byte) in stretch.iter().enumerate() {
            out[i * typesize + j] = byte;
        }
    }
    let whole = elements * typesize;
    out[whole..].copy_from_slice(&shuffled[whole..]);
}

/// Undoes Blosc's bit shuffle (the bitshuffle library's transposition):
/// row `8 * j + k` holds bit `k` of byte `j` of every element, eight elements
/// to a byte, the first in the lowest bit. Blosc shuffles only blocks whose
/// element count is a multiple of 8 (others are stored as they are), and
/// leaves bytes that fill no whole element in place.
fn bit_unshuffle(typesize: usize, shuffled: &[u8], out: &mut [u8]) {
    let elements = shuffled.len() / typesize;
    if !elements.is_multiple_of(8) {
        out.copy_from_slice(shuffled);
        return;
    }
    let row = elements / 8;
    let whole = elements * typesize;
    out[..whole].fill(0);
    for j in 0..typesize {
        for k in 0..8 {
            let bits = &shuffled[(8 * j + k) * row..(8 * j + k + 1) * row];
            for (q, &byte) in bits.iter().enumerate() {
                for m in 0..8 {
                    let bit = (byte >> m) & 1;
                    out[(8 * q + m) * typesize + j] |= bit << k;
                }
            }
        }
    }
    out[whole..].copy_from_slice(&shuffled[whole..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_buffers_come_back_as_they_are() {
        let mut buffer = vec![2, 1, MEMCPYED | SHUFFLE, 8];
        buffer.extend_from_slice(&5u32.to_le_bytes());
        buffer.extend_from_slice(&5u32.to_le_bytes());
        buffer.extend_from_slice(&21u32.to_le_bytes());
        buffer.extend_from_slice(b"hello");
        assert_eq!(decompress(&buffer, 5).unwrap(), b"hello");
        assert!(decompress(&buffer, 6).is_err());
    }

    #[test]
    fn a_block_size_from_the_header_is_not_trusted_for_allocation() {
        // 32 bytes inside, but a block size of 4 GiB - 1 and no blocks.
        let mut buffer = vec![2, 1, 0, 1];
        buffer.extend_from_slice(&32u32.to_le_bytes());
        buffer.extend_from_slice(&u32::MAX.to_le_bytes());
        buffer.extend_from_slice(&16u32.to_le_bytes());
        let err = decompress(&buffer, 32).unwrap_err();
        assert!(err.starts_with("blosc:"), "{err}");
    }

    #[test]
    fn lz4_matches_may_overlap_what_they_write() {
        // "ab" as literals, then a match 2 back for 6 bytes: "abababab".
        let mut out = Vec::new();
        lz4_block(&[0x22, b'a', b'b', 2, 0], 8, &mut out).unwrap();
        assert_eq!(out, b"abababab");
    }

    #[test]
    fn shuffled_bytes_are_put_back_per_element() {
        let mut out = [0u8; 7];
        unshuffle(3, &[1, 4, 2, 5, 3, 6, 9], &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 9]);
    }

    #[test]
    fn bit_shuffled_bytes_are_put_back_per_bit() {
        // Eight 2-byte elements: element i is [i, 0x80]; bit k of byte 0 of
        // the elements forms row k, byte 1's top bit forms row 15.
        let elements: Vec<u8> = (0..8u8).flat_map(|i| [i, 0x80]).collect();
        let mut shuffled = vec![0u8; 16];
        for (i, pair) in elements.chunks(2).enumerate() {
            for (j, &byte) in pair.iter().enumerate() {
                for k in 0..8 {
                    shuffled[8 * j + k] |= ((byte >> k) & 1) << i;
                }
            }
        }
        assert_eq!(shuffled[0], 0b1010_1010);
        assert_eq!(shuffled[15], 0xff);
        let mut out = vec![0u8; 16];
        bit_unshuffle(2, &shuffled, &mut out);
        assert_eq!(out, elements);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = decompress(&bytes, 256);
            for codec in 0..5 {
                let _ = decode_stream(codec, &bytes, 256, &mut Vec::new());
            }
        }
        // A header that promises blocks that are not there.
        let mut buffer = vec![2, 1, SHUFFLE | (1 << 5), 8];
        buffer.extend_from_slice(&4096u32.to_le_bytes());
        buffer.extend_from_slice(&1024u32.to_le_bytes());
        buffer.extend_from_slice(&16u32.to_le_bytes());
        assert!(decompress(&buffer, 4096).is_err());
    }
}
