//! What a worker holds of peer-to-peer shuffles: the shards peers pushed for
//! the output partitions it owns, in memory up to a budget and spilled to disk
//! beyond it, until the output task takes them.
//!
//! Each shard is tagged with the input partition it came from, so a transfer
//! that runs twice (a retry, a recomputation) replaces its shards instead of
//! adding to them, and the output task can check it got every input.
//!
//! Shards are kept per run of a shuffle, named after the scheduler's
//! assignment of the run's layout. When the layout is released the scheduler
//! stamps the release with its latest assignment, so a worker drops the runs
//! up to it and refuses their late shards, while a later run (a restart, or
//! the same graph computed again) whose shards got here first is kept.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::scheduler::assigned_after;

/// The longest shuffle id a peer may name.
const MAX_ID_LEN: usize = 200;
/// The most output partitions a worker keeps shards for at once: bounds the
/// bookkeeping a peer can make it hold (the bytes themselves spill to disk).
pub const MAX_PARTS: usize = 1 << 20;
/// How many finished shuffles a worker remembers, to refuse their late shards.
const MAX_FORGOTTEN_SHUFFLES: usize = 4096;
/// The in-memory budget of a worker without a memory limit.
pub const UNLIMITED_SHUFFLE_MEMORY: u64 = 1 << 30;
/// The share of a worker's memory limit its shuffle buffers may take.
pub const SHUFFLE_MEMORY_FRACTION: f64 = 0.1;

/// One shard: rows of input partition `input` bound for output partition `part`.
#[derive(Clone, Debug)]
pub struct Shard {
    /// The input partition it came from.
    pub input: u32,
    /// The output partition it belongs to.
    pub part: u32,
    /// Its rows, encoded.
    pub bytes: Bytes,
}

/// What went wrong receiving or taking shards.
#[derive(Debug, thiserror::Error)]
pub enum ShuffleBufferError {
    /// A shuffle id that is not a plain name ending in a run.
    #[error("invalid shuffle id {0:?}: expected letters, digits, '-' and '_', ending in '-r' and a hexadecimal run")]
    InvalidId(String),
    /// Shards of a shuffle run this worker was told is over (a transfer
    /// cancelled while it pushed).
    #[error("shuffle run {0} is over: its shards are no longer kept")]
    RunOver(String),
    /// More output partitions than [`MAX_PARTS`] at once.
    #[error("more than {MAX_PARTS} shuffle output partitions held at once")]
    TooManyParts,
    /// Writing or reading the spill files.
    #[error("shuffle spill file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The shards of one output partition.
#[derive(Default)]
struct PartBuffer {
    /// Shards in memory, by input partition.
    memory: BTreeMap<u32, Bytes>,
    memory_bytes: u64,
    /// Whether some of its shards are in its spill file.
    spilled: bool,
    /// Bytes in its spill file.
    disk_bytes: u64,
}

#[derive(Default)]
struct Inner {
    parts: HashMap<(String, u32), PartBuffer>,
    /// Per shuffle told to forget, the last run that is over; oldest first.
    forgotten: HashMap<String, u32>,
    forgotten_order: std::collections::VecDeque<String>,
    memory_bytes: u64,
    /// Bytes in spill files not yet taken or forgotten.
    disk_bytes: u64,
}

/// A worker's shuffle shards.
pub struct ShuffleBuffers {
    dir: PathBuf,
    budget: u64,
    inner: Mutex<Inner>,
    spilled: AtomicU64,
}

impl ShuffleBuffers {
    /// Buffers keeping at most `budget` bytes in memory, spilling to files
    /// under `dir` (created when first needed).
    pub fn new(dir: PathBuf, budget: u64) -> Self {
        ShuffleBuffers {
            dir,
            budget: budget.max(1),
            inner: Mutex::default(),
            spilled: AtomicU64::new(0),
        }
    }

    /// The budget for a worker with `memory_limit` bytes (0: none).
    pub fn budget_for(memory_limit: u64) -> u64 {
        if memory_limit == 0 {
            UNLIMITED_SHUFFLE_MEMORY
        } else {
            (memory_limit as f64 * SHUFFLE_MEMORY_FRACTION) as u64
        }
    }

    /// Bytes written to disk so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled.load(Ordering::Relaxed)
    }

    /// Bytes held in memory now.
    pub fn memory_bytes(&self) -> u64 {
        self.lock().memory_bytes
    }

    /// Bytes held now, in memory and in spill files: shards no output task
    /// has taken yet.
    pub fn held_bytes(&self) -> u64 {
        let inner = self.lock();
        inner.memory_bytes + inner.disk_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `shards` of shuffle `id`; a shard from an input already held
    /// replaces it. Spills the largest partitions while over budget.
    pub fn receive(&self, id: &str, shards: Vec<Shard>) -> Result<(), ShuffleBufferError> {
        let (shuffle, run) = check_id(id)?;
        let mut inner = self.lock();
        if inner
            .forgotten
            .get(shuffle)
            .is_some_and(|&through| !assigned_after(run, through))
        {
            return Err(ShuffleBufferError::RunOver(id.to_string()));
        }
        for shard in shards {
            let len = shard.bytes.len() as u64;
            let key = (id.to_string(), shard.part);
            if inner.parts.len() >= MAX_PARTS && !inner.parts.contains_key(&key) {
                return Err(ShuffleBufferError::TooManyParts);
            }
            let buffer = inner.parts.entry(key).or_default();
            let replaced = buffer.memory.insert(shard.input, shard.bytes);
            let old = replaced.map_or(0, |b| b.len() as u64);
            buffer.memory_bytes = buffer.memory_bytes + len - old;
            inner.memory_bytes = inner.memory_bytes + len - old;
        }
        self.spill_locked(&mut inner, self.budget)
    }

    /// Spills the largest partitions until at most `keep` bytes stay in
    /// memory (the memory manager's call when the process is over its
    /// spill threshold). Returns the bytes written.
    pub fn spill_until(&self, keep: u64) -> Result<u64, ShuffleBufferError> {
        let before = self.spilled_bytes();
        let mut inner = self.lock();
        self.spill_locked(&mut inner, keep)?;
        Ok(self.spilled_bytes() - before)
    }

    fn spill_locked(&self, inner: &mut Inner, keep: u64) -> Result<(), ShuffleBufferError> {
        while inner.memory_bytes > keep {
            let Some(key) = inner
                .parts
                .iter()
                .filter(|(_, b)| b.memory_bytes > 0)
                .max_by_key(|(_, b)| b.memory_bytes)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            let path = self.path(&key.0, key.1);
            let Some(buffer) = inner.parts.get_mut(&key) else {
                break;
            };
            if let Err(source) = append(&path, &buffer.memory) {
                // The shards stay in memory; the caller hears why.
                return Err(ShuffleBufferError::Io { path, source });
            }
            buffer.memory.clear();
            let freed = std::mem::take(&mut buffer.memory_bytes);
            buffer.spilled = true;
            buffer.disk_bytes += freed;
            inner.memory_bytes -= freed;
            inner.disk_bytes += freed;
            self.spilled.fetch_add(freed, Ordering::Relaxed);
            tracing::debug!(shuffle = %key.0, part = key.1, bytes = freed, "spilled shuffle shards");
        }
        Ok(())
    }

    /// Takes every shard of output partition `part` of shuffle `id`, by input
    /// partition (the last one received for each input); none when nothing came.
    pub fn take(&self, id: &str, part: u32) -> Result<BTreeMap<u32, Bytes>, ShuffleBufferError> {
        check_id(id)?;
        let buffer = {
            let mut inner = self.lock();
            let buffer = inner.parts.remove(&(id.to_string(), part));
            if let Some(b) = &buffer {
                inner.memory_bytes -= b.memory_bytes;
                inner.disk_bytes -= b.disk_bytes;
            }
            buffer
        };
        let Some(buffer) = buffer else {
            return Ok(BTreeMap::new());
        };
        let mut shards = BTreeMap::new();
        if buffer.spilled {
            let path = self.path(id, part);
            let read = read_all(&path).map_err(|source| ShuffleBufferError::Io {
                path: path.clone(),
                source,
            });
            let _ = std::fs::remove_file(&path);
            shards = read?;
        }
        // Those in memory came after the ones spilled.
        shards.extend(buffer.memory);
        Ok(shards)
    }

    /// Drops everything held for the runs of shuffle `id` whose layout was
    /// assigned up to serial `through` (the shuffle finished, was cancelled
    /// or restarts), and refuses shards of those runs from now on. Later runs
    /// are kept.
    pub fn forget(&self, id: &str, through: u32) {
        let mut inner = self.lock();
        let keys: Vec<(String, u32)> = inner
            .parts
            .keys()
            .filter(|(name, _)| {
                parse_run(name).is_some_and(|(s, run)| s == id && !assigned_after(run, through))
            })
            .cloned()
            .collect();
        match inner.forgotten.get_mut(id) {
            Some(last) if assigned_after(through, *last) => *last = through,
            Some(_) => {}
            None => {
                inner.forgotten.insert(id.to_string(), through);
                inner.forgotten_order.push_back(id.to_string());
                if inner.forgotten_order.len() > MAX_FORGOTTEN_SHUFFLES {
                    if let Some(oldest) = inner.forgotten_order.pop_front() {
                        inner.forgotten.remove(&oldest);
                    }
                }
            }
        }
        for key in keys {
            if let Some(buffer) = inner.parts.remove(&key) {
                inner.memory_bytes -= buffer.memory_bytes;
                inner.disk_bytes -= buffer.disk_bytes;
                if buffer.spilled {
                    let _ = std::fs::remove_file(self.path(&key.0, key.1));
                }
            }
        }
    }

    fn path(&self, id: &str, part: u32) -> PathBuf {
        self.dir.join(format!("{id}-{part}.shards"))
    }
}

impl Drop for ShuffleBuffers {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        for ((id, part), buffer) in inner.parts.drain() {
            if buffer.spilled {
                let _ = std::fs::remove_file(self.dir.join(format!("{id}-{part}.shards")));
            }
        }
    }
}

/// The buffer name of run `run` (its layout's assignment serial) of shuffle `id`.
pub fn run_buffer_id(id: &str, run: u32) -> String {
    format!("{id}-r{run:x}")
}

/// The shuffle and run a buffer name stands for.
fn parse_run(name: &str) -> Option<(&str, u32)> {
    let (id, run) = name.rsplit_once("-r")?;
    let hex = !run.is_empty() && run.len() <= 8 && run.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && !id.is_empty())
        .then(|| u32::from_str_radix(run, 16).ok())
        .flatten()
        .map(|run| (id, run))
}

/// Ids come from peers and name files: plain names ending in a run only.
fn check_id(id: &str) -> Result<(&str, u32), ShuffleBufferError> {
    let plain = id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match parse_run(id) {
        Some(parsed) if plain => Ok(parsed),
        _ => Err(ShuffleBufferError::InvalidId(id.chars().take(64).collect())),
    }
}

/// Appends shards as records: input (u32), length (u64), bytes.
fn append(path: &Path, shards: &BTreeMap<u32, Bytes>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut out = std::io::BufWriter::new(file);
    for (input, bytes) in shards {
        out.write_all(&input.to_le_bytes())?;
        out.write_all(&(bytes.len() as u64).to_le_bytes())?;
        out.write_all(bytes)?;
    }
    out.flush()
}

/// Reads back what [`append`] wrote; a later record of an input replaces an earlier one.
fn read_all(path: &Path) -> std::io::Result<BTreeMap<u32, Bytes>> {
    // Sized from the file's length up front: no doubling copies of a large shard.
    let data = Bytes::from(std::fs::read(path)?);
    let mut shards = BTreeMap::new();
    let mut at = 0usize;
    while at < data.len() {
        let header = data
            .get(at..at + 12)
            .ok_or_else(|| std::io::Error::other("truncated record header"))?;
        let input = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let len = u64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
        let start = at + 12;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= data.len())
            .ok_or_else(|| std::io::Error::other("truncated record"))?;
        shards.insert(input, data.slice(start..end));
        at = end;
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn shard(input: u32, part: u32, text: &str) -> Shard {
        Shard {
            input,
            part,
            bytes: Bytes::from(text.to_string()),
        }
    }

    #[test]
    fn shards_spill_past_the_budget_and_come_back_whole_with_repeats_replaced() {
        let dir = scratch("shuffle-spill");
        let buffers = ShuffleBuffers::new(dir.clone(), 10);
        let id = run_buffer_id("s-1", 1);
        buffers
            .receive(&id, vec![shard(0, 0, "aaaaaa"), shard(1, 0, "bbbbbb")])
            .unwrap();
        assert!(buffers.spilled_bytes() >= 12);
        buffers
            .receive(&id, vec![shard(1, 0, "BB"), shard(2, 1, "c")])
            .unwrap();
        let part0 = buffers.take(&id, 0).unwrap();
        assert_eq!(part0.len(), 2);
        assert_eq!(part0[&0], Bytes::from("aaaaaa"));
        assert_eq!(part0[&1], Bytes::from("BB"));
        assert_eq!(buffers.take(&id, 0).unwrap().len(), 0);
        assert_eq!(buffers.take(&id, 1).unwrap()[&2], Bytes::from("c"));
        assert_eq!(buffers.memory_bytes(), 0);
        assert_eq!(buffers.held_bytes(), 0);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ids_that_could_name_other_files_are_refused() {
        let buffers = ShuffleBuffers::new(scratch("shuffle-ids"), 10);
        for id in [
            "../etc-r1",
            "",
            "-r1",
            "a/b-r1",
            "x y-r1",
            "norun",
            "s-r",
            "s-rzz",
            "s-r123456789",
        ] {
            assert!(buffers.receive(id, vec![shard(0, 0, "z")]).is_err(), "{id}");
        }
        buffers.receive("ok-r3", vec![shard(0, 3, "z")]).unwrap();
        buffers.forget("ok", 3);
        assert_eq!(buffers.take("ok-r3", 3).unwrap().len(), 0);
    }

    #[test]
    fn forgetting_a_shuffle_frees_its_runs_and_refuses_their_late_shards() {
        let dir = scratch("shuffle-forget");
        let buffers = ShuffleBuffers::new(dir.clone(), 8);
        let (old, other) = (run_buffer_id("s-1", 7), run_buffer_id("s-10", 7));
        // A later run whose shards got here before the old run was released.
        let early = run_buffer_id("s-1", 12);
        buffers
            .receive(&old, vec![shard(0, 0, "aaaaaaaa"), shard(0, 1, "bb")])
            .unwrap();
        buffers.receive(&other, vec![shard(0, 0, "k")]).unwrap();
        buffers.receive(&early, vec![shard(0, 0, "e")]).unwrap();
        assert_eq!(buffers.held_bytes(), 12);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        buffers.forget("s-1", 9);
        assert_eq!(buffers.held_bytes(), 2);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        // A transfer of the old run still pushing is refused; later runs are kept.
        assert!(matches!(
            buffers.receive(&old, vec![shard(1, 0, "late")]),
            Err(ShuffleBufferError::RunOver(_))
        ));
        // An older release heard late does not bring the old run back.
        buffers.forget("s-1", 8);
        assert!(buffers.receive(&old, vec![shard(1, 0, "late")]).is_err());
        let new = run_buffer_id("s-1", 10);
        buffers.receive(&new, vec![shard(1, 0, "new")]).unwrap();
        assert_eq!(buffers.take(&new, 0).unwrap()[&1], Bytes::from("new"));
        assert_eq!(buffers.take(&early, 0).unwrap()[&0], Bytes::from("e"));
        assert_eq!(buffers.take(&other, 0).unwrap()[&0], Bytes::from("k"));
        assert_eq!(buffers.held_bytes(), 0);
        // Serials wrap: a run just past the wrap is later than one just before it.
        buffers.forget("w", u32::MAX - 1);
        assert!(buffers
            .receive(&run_buffer_id("w", u32::MAX - 2), vec![shard(0, 0, "x")])
            .is_err());
        buffers
            .receive(&run_buffer_id("w", 3), vec![shard(0, 0, "x")])
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
