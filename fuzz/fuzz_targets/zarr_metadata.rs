//! Parses arbitrary bytes as Zarr array metadata (format 2 and 3): errors
//! name the file, nothing panics, and an accepted layout's chunks are within
//! the per-chunk limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rask::array::parse_layout;

fuzz_target!(|data: &[u8]| {
    for format in [2u8, 3] {
        match parse_layout(format, data, "fuzz.zarr".into(), &"fuzz.zarr/meta") {
            Ok(layout) => {
                assert_eq!(layout.chunks.len(), layout.shape.len());
                let elements = layout.chunks.iter().try_fold(1u64, |n, &c| n.checked_mul(c as u64));
                assert!(elements.is_some());
            }
            Err(error) => assert!(error.to_string().contains("fuzz.zarr")),
        }
    }
});
