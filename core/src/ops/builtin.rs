//! Ops every rask binary has: what `rask worker` can run without user code, and
//! what the demo, the microbenchmark and the tests use.

crate::op! {
    /// Returns its argument.
    pub fn noop(i: u64) -> u64 { i }
}

crate::op! {
    /// Adds one.
    pub fn inc(i: u64) -> u64 { i.wrapping_add(1) }
}

crate::op! {
    /// Adds two numbers.
    pub fn add(a: u64, b: u64) -> u64 { a.wrapping_add(b) }
}

crate::op! {
    /// Sums a list.
    pub fn sum(values: Vec<u64>) -> u64 { values.iter().fold(0u64, |a, b| a.wrapping_add(*b)) }
}

crate::op! {
    /// Sleeps for `ms` milliseconds, then returns `value`.
    pub fn sleep_then(ms: u64, value: u64) -> u64 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        value
    }
}

crate::op! {
    /// `len` pseudo-random bytes from `seed` (a block of data for memory tests).
    pub fn random_bytes(len: u64, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }
}

crate::op! {
    /// A checksum of a block: the sum of its bytes.
    pub fn checksum(block: Vec<u8>) -> u64 { block.iter().map(|&b| u64::from(b)).sum() }
}
