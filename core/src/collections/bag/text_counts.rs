//! Counts of texts for `frequencies`: a text of up to 7 bytes (most words) is
//! packed with its length into one integer, so its table entry is 16 bytes
//! compared in one instruction; longer texts are kept as strings. Counting
//! words is a hash-table lookup per word, and with string keys most of its
//! time went to cache misses on the keys (`perf`: 58% of the bag benchmark).

use compact_str::CompactString;

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// How many times each text was seen.
#[derive(Default)]
pub(super) struct TextCounts {
    short: Map<u64, u64>,
    long: Map<CompactString, u64>,
}

impl TextCounts {
    /// Counts `text` `n` more times.
    pub(super) fn add(&mut self, text: &str, n: u64) {
        if let Some(key) = pack(text) {
            *self.short.entry(key).or_insert(0) += n;
        } else if let Some(count) = self.long.get_mut(text) {
            *count += n;
        } else {
            self.long.insert(CompactString::from(text), n);
        }
    }

    /// Every text with its count, in no particular order.
    pub(super) fn into_counts(self) -> impl Iterator<Item = (String, u64)> {
        let short = self.short.into_iter().map(|(key, n)| (unpack(key), n));
        let long = self
            .long
            .into_iter()
            .map(|(text, n)| (text.into_string(), n));
        short.chain(long)
    }
}

/// The bytes of a text of at most 7 bytes, with its length in the top byte.
///
/// Built from two overlapping loads in registers: copying the bytes into an
/// 8-byte buffer and reading it back stalled on store forwarding (a quarter
/// of the bag benchmark's samples in `add`).
fn pack(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let value = match n {
        0 => 0,
        1..=3 => {
            u64::from(bytes[0])
                | u64::from(bytes[n / 2]) << (8 * (n / 2))
                | u64::from(bytes[n - 1]) << (8 * (n - 1))
        }
        4..=7 => {
            let low = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let high = u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
            u64::from(low) | u64::from(high) << (8 * (n - 4))
        }
        _ => return None,
    };
    Some(value | (n as u64) << 56)
}

/// The text [`pack`] packed.
fn unpack(key: u64) -> String {
    let word = key.to_le_bytes();
    let len = usize::from(word[7]).min(7);
    String::from_utf8_lossy(&word[..len]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_texts_count_apart_and_come_back_whole() {
        let mut counts = TextCounts::default();
        let texts = [
            "",
            "a",
            "a\0",
            "ça",
            "1234567",
            "12345678",
            "ça va très bien",
            "a",
        ];
        for text in texts {
            counts.add(text, 1);
        }
        counts.add("12345678", 4);
        let mut got: Vec<(String, u64)> = counts.into_counts().collect();
        got.sort();
        let want: Vec<(String, u64)> = [
            ("", 1),
            ("1234567", 1),
            ("12345678", 5),
            ("a", 2),
            ("a\0", 1),
            ("ça", 1),
            ("ça va très bien", 1),
        ]
        .into_iter()
        .map(|(t, n)| (t.to_string(), n))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn packing_keeps_every_byte_of_every_short_text() {
        // Each length, with bytes that differ everywhere, against the
        // byte-by-byte layout: the bytes in order, the length on top.
        for n in 0..=7usize {
            for seed in 0..64u8 {
                let bytes: Vec<u8> = (0..n as u8)
                    .map(|i| b'!' + (seed.wrapping_mul(7).wrapping_add(i * 13)) % 90)
                    .collect();
                let text = std::str::from_utf8(&bytes).unwrap();
                let mut word = [0u8; 8];
                word[..n].copy_from_slice(&bytes);
                word[7] = n as u8;
                assert_eq!(pack(text), Some(u64::from_le_bytes(word)), "{text:?}");
                assert_eq!(unpack(pack(text).unwrap()), text);
            }
        }
        assert_eq!(pack("12345678"), None);
    }
}
