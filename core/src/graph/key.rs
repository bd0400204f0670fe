//! Task keys: the names of results.
//!
//! A key looks like Dask's string keys: `name-token` for a single task and
//! `name-token[i,j]` for one chunk of a collection. The part before the index (or
//! before the token) names the task's *group*, which the scheduler uses to spot
//! root-ish tasks and to learn typical durations.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use triomphe::ThinArc;

/// The name of one task and of its result.
///
/// Two words: the hash, computed once when the key is made (seeded per
/// process, so keys cannot be crafted to collide), and a thin pointer to the
/// shared text. Tables that hold millions of keys hash those 8 bytes without
/// touching the text, even when they grow; equality compares hashes, then
/// pointers, then texts.
#[derive(Clone)]
pub struct Key {
    hash: u64,
    text: ThinArc<(), u8>,
}

/// The seed of key hashes in this process.
/// Hashes key texts with a seed that is random per process (peers cannot
/// pick colliding keys) but the same for every copy of rask in the process:
/// a notebook links a copy into each cell, and a key made in one cell must
/// find its twin made in another. The seed comes from the 16 random bytes
/// the kernel gives every process at exec (`AT_RANDOM`), hashed.
fn key_hasher() -> &'static foldhash::quality::FixedState {
    static STATE: std::sync::OnceLock<foldhash::quality::FixedState> = std::sync::OnceLock::new();
    STATE.get_or_init(|| foldhash::quality::FixedState::with_seed(process_seed()))
}

fn process_seed() -> u64 {
    use std::hash::BuildHasher;
    // SAFETY: getauxval only reads the auxiliary vector; AT_RANDOM points at 16
    // bytes that live as long as the process.
    let random = unsafe { libc::getauxval(libc::AT_RANDOM) } as *const [u8; 16];
    // SAFETY: as above; a null pointer (no AT_RANDOM) is checked first.
    let bytes = unsafe { random.as_ref() }.copied().unwrap_or_else(|| {
        let fallback = foldhash::quality::RandomState::default().hash_one(0u64);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&fallback.to_le_bytes());
        bytes
    });
    foldhash::quality::FixedState::with_seed(0x7261_736b_2d6b_6579).hash_one(bytes)
}

impl Key {
    /// A key with exactly this text.
    pub fn new(text: impl AsRef<str>) -> Self {
        use std::hash::BuildHasher;
        let text = text.as_ref();
        Key {
            hash: key_hasher().hash_one(text),
            text: ThinArc::from_header_and_slice((), text.as_bytes()),
        }
    }

    /// A fresh, process-unique key `name-token` (Dask's `name-<uuid>` for impure tasks).
    pub fn unique(name: &str) -> Self {
        Key::new(format!("{name}-{}", fresh_token()))
    }

    /// The key of chunk `index` of the collection whose keys start with `self`.
    pub fn indexed(&self, index: &[usize]) -> Self {
        let mut text = String::with_capacity(self.as_str().len() + 2 + 4 * index.len());
        text.push_str(self.as_str());
        text.push('[');
        for (i, part) in index.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&part.to_string());
        }
        text.push(']');
        Key::new(text)
    }

    /// The key's hash, computed once when it was made (seeded per process):
    /// what tables that index keys by id hash.
    pub(crate) fn precomputed_hash(&self) -> u64 {
        self.hash
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        // SAFETY: `Key::new` is the only constructor, and it stores the bytes of a `str`.
        unsafe { std::str::from_utf8_unchecked(&self.text.slice) }
    }

    /// The task group: chunks of one collection, or calls of one op made together.
    ///
    /// `sum-3fa2[0,1]` → `sum-3fa2`; `inc-3fa2` → `inc`; `x` → `x`.
    pub fn group(&self) -> &str {
        let text = self.as_str();
        if let Some(open) = text.find('[') {
            return &text[..open];
        }
        strip_token(text)
    }

    /// The task prefix: the op-level name used for duration estimates (`sum-3fa2[0]` → `sum`).
    pub fn prefix(&self) -> &str {
        strip_token(self.group())
    }
}

fn strip_token(text: &str) -> &str {
    match text.rfind('-') {
        Some(dash) if dash > 0 && is_token(&text[dash + 1..]) => &text[..dash],
        _ => text,
    }
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A 16-hex-digit token unique within this process and very likely across processes.
pub fn fresh_token() -> String {
    format!("{:016x}", fresh_number())
}

/// A number unique within this process and very likely across processes.
pub fn fresh_number() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SALT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let salt = *SALT.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        mix(nanos ^ (u64::from(std::process::id()) << 32))
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    mix(salt.wrapping_add(n))
}

/// splitmix64's finaliser: a bijection, so distinct counters give distinct tokens.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && (self.text.ptr() == other.text.ptr() || self.text.slice == other.text.slice)
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Key::new(text))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Key {
    fn from(text: &str) -> Self {
        Key::new(text)
    }
}

impl From<String> for Key {
    fn from(text: String) -> Self {
        Key::new(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_prefixes_follow_dask() {
        assert_eq!(Key::new("inc-3fa2").group(), "inc");
        assert_eq!(Key::new("sum-3fa2[0,1]").group(), "sum-3fa2");
        assert_eq!(Key::new("sum-3fa2[0,1]").prefix(), "sum");
        assert_eq!(Key::new("x").group(), "x");
        assert_eq!(Key::new("load-data").group(), "load-data");
        assert_eq!(Key::new("x").indexed(&[1, 2]).as_str(), "x[1,2]");
    }

    #[test]
    fn unique_keys_differ() {
        let a = Key::unique("inc");
        let b = Key::unique("inc");
        assert_ne!(a, b);
        assert_eq!(a.group(), "inc");
    }

    #[test]
    fn equal_texts_are_equal_keys_wherever_they_were_made() {
        let a = Key::new("sum-3fa2[0,1]");
        let b: Key = postcard::from_bytes(&postcard::to_stdvec(&a).unwrap()).unwrap();
        assert_eq!(a, b);
        let mut set = foldhash::HashSet::default();
        set.insert(a);
        assert!(set.contains(&b));
        assert!(Key::new("a") < Key::new("b"));
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"sum-3fa2[0,1]\"");
        assert_eq!(std::mem::size_of::<Key>(), 16);
        assert_eq!(Key::new("").as_str(), "");
    }
}
