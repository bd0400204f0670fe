//! Decompresses arbitrary bytes as a Blosc chunk of a size taken from the
//! input: errors are fine, panics are not, and success means exactly the
//! expected number of bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rask::array::{decompress_chunk, Compression};

fuzz_target!(|data: &[u8]| {
    let Some((size, chunk)) = data.split_first_chunk::<2>() else {
        return;
    };
    let expected = usize::from(u16::from_le_bytes(*size));
    for compression in [Compression::Blosc, Compression::Gzip(1), Compression::Zlib(1), Compression::Zstd(0)] {
        if let Ok(out) = decompress_chunk(compression, chunk.to_vec(), expected) {
            assert_eq!(out.len(), expected);
        }
    }
});
