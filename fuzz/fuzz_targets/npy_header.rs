//! Parses arbitrary bytes as the start of a `.npy` file: errors are fine,
//! panics are not, and an accepted header's data size does not overflow.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rask::array::parse_header;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = parse_header(data) {
        let elements = header.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        assert!(elements.is_some());
        assert!(header.data_offset as usize <= data.len());
    }
});
