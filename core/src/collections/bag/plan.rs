//! A bag partition's plan: where its items come from (a block of a text file,
//! or its input partitions), the steps every item goes through, and what the
//! task returns (the items, or a partial reduction of them). One task runs the
//! whole plan, item by item, so a chain of `map`/`filter`/`flatten` never
//! holds more than its inputs and its result.

use super::func::{show, Field, Func, Pred};
use super::records::Records;
use super::reduce::Reduction;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::io::Read;

/// How a text file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

impl Compression {
    /// The compression a file name's extension says.
    pub fn of(name: &str) -> Compression {
        if name.ends_with(".gz") {
            Compression::Gzip
        } else if name.ends_with(".zst") || name.ends_with(".zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Lines of a text file: those that start in `[start, end)` (the whole file
/// when `end` is `None`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TextBlock {
    pub location: String,
    pub start: u64,
    pub end: Option<u64>,
    pub compression: Compression,
}

/// Where a partition's items come from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Origin {
    /// Lines of a file, each a text item.
    Text(TextBlock),
    /// The items of the task's input partitions, in order.
    Inputs,
}

/// What one item goes through.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Step {
    /// Replaced by the function's result.
    Map(Func),
    /// Kept when the predicate holds.
    Filter(Pred),
    /// A list replaced by its elements.
    Flatten,
}

/// What a partition's task does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub origin: Origin,
    pub steps: Vec<Step>,
    /// What it returns: its items, or a reduction of them.
    pub reduction: Option<Reduction>,
}

impl Plan {
    /// The plan as its task's parameter bytes (JSON: plans hold JSON values).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a plan is plain data")
    }
}

/// Where items that come out of a plan's steps go.
pub trait Sink {
    /// Takes one item.
    fn item(&mut self, item: Json) -> Result<(), String>;

    /// Takes one text item, borrowed (sinks that count texts need not copy it).
    fn text(&mut self, text: &str) -> Result<(), String> {
        self.item(Json::String(text.to_string()))
    }
}

impl Sink for Vec<Json> {
    fn item(&mut self, item: Json) -> Result<(), String> {
        self.push(item);
        Ok(())
    }
}

/// Runs `item` through `steps`, handing what comes out to `sink`.
pub fn run_steps(item: Json, steps: &[Step], sink: &mut dyn Sink) -> Result<(), String> {
    let Some((step, rest)) = steps.split_first() else {
        return sink.item(item);
    };
    match step {
        // Split then flatten: the words go on one by one, never a list.
        Step::Map(Func::Split(separator)) if matches!(rest.first(), Some(Step::Flatten)) => {
            let Json::String(text) = &item else {
                return Err(format!("split: {} is not text", show(&item)));
            };
            let after = &rest[1..];
            let mut each = |word: &str| {
                if after.is_empty() {
                    sink.text(word)
                } else {
                    run_steps(Json::String(word.to_string()), after, sink)
                }
            };
            match separator {
                None => text.split_whitespace().try_for_each(&mut each),
                Some(sep) => text.split(sep.as_str()).try_for_each(&mut each),
            }
        }
        Step::Map(f) => run_steps(f.apply(item)?, rest, sink),
        Step::Filter(p) => {
            if p.test(&item)? {
                run_steps(item, rest, sink)
            } else {
                Ok(())
            }
        }
        Step::Flatten => match item {
            Json::Array(items) => items
                .into_iter()
                .try_for_each(|item| run_steps(item, rest, sink)),
            other => Err(format!("flatten: {} is not a list", show(&other))),
        },
    }
}

/// Runs every line of a text block through `steps` (a first `parse_json`
/// step parses the line in place); errors name the file and line.
pub fn run_text(block: &TextBlock, steps: &[Step], sink: &mut dyn Sink) -> Result<(), String> {
    let (parse, rest) = match steps.split_first() {
        Some((Step::Map(Func::ParseJson), rest)) => (true, rest),
        _ => (false, steps),
    };
    // Parse then pluck: only the wanted field is built, the others skipped.
    let pluck = match rest.first() {
        Some(Step::Map(Func::Get(Field::Name(name)))) if parse => Some(name.as_str()),
        _ => None,
    };
    let where_ = |n: usize| match block.end {
        Some(_) if block.start > 0 => format!(
            "{}: line {} of the block at byte {}",
            block.location,
            n + 1,
            block.start
        ),
        _ => format!("{}: line {}", block.location, n + 1),
    };
    let mut count = 0;
    for_each_line(block, |line| {
        let n = count;
        count += 1;
        let line =
            std::str::from_utf8(line).map_err(|e| format!("{}: not UTF-8 text: {e}", where_(n)))?;
        if let Some(name) = pluck {
            if let Some(value) = field_of_line(line, name) {
                return run_steps(value, &rest[1..], sink)
                    .map_err(|e| format!("{}: {e}", where_(n)));
            }
            // Not an object with that field: the full parse below says why.
        }
        let item = if parse {
            serde_json::from_str(line).map_err(|e| format!("{}: not JSON: {e}", where_(n)))?
        } else {
            Json::String(line.to_string())
        };
        run_steps(item, rest, sink).map_err(|e| format!("{}: {e}", where_(n)))
    })
}

/// Field `name` of a line holding one JSON object (the last one, if it
/// repeats, as a full parse keeps), other fields skipped unbuilt; `None` when
/// the line is not such an object.
fn field_of_line(line: &str, name: &str) -> Option<Json> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// Whether a key is the wanted one, compared without copying it.
    struct IsKey<'a>(&'a str);
    impl<'de> DeserializeSeed<'de> for IsKey<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl<'de> Visitor<'de> for IsKey<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E>(self, key: &str) -> Result<bool, E> {
            Ok(key == self.0)
        }
    }

    struct FieldOf<'a>(&'a str);
    impl<'de> Visitor<'de> for FieldOf<'_> {
        type Value = Option<Json>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Json>, A::Error> {
            let mut found = None;
            while let Some(wanted) = map.next_key_seed(IsKey(self.0))? {
                if wanted {
                    found = Some(map.next_value::<Json>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    let mut de = serde_json::Deserializer::from_str(line);
    let found = de.deserialize_map(FieldOf(name)).ok()?;
    de.end().ok()?;
    found
}

/// Lines without their `\n` or `\r\n`; no empty last line after a final newline.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let empty = text.is_empty();
    let mut start = 0;
    memchr::memchr_iter(b'\n', body)
        .chain(std::iter::once(body.len()))
        .filter(move |_| !empty)
        .map(move |end| {
            let line = &body[start..end];
            start = end + 1;
            without_cr(line)
        })
}

/// Hands each line of a block to `each`, in order. A whole file is read (and
/// decompressed) a chunk at a time, so its text never sits in memory whole; a
/// block of a split file is read at once.
fn for_each_line(
    block: &TextBlock,
    each: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let location = crate::io::Location::parse(&block.location).map_err(|e| e.to_string())?;
    let name = &block.location;
    if let Some(end) = block.end {
        let text =
            crate::io::line_blocks::read(&location, block.start, end).map_err(|e| e.to_string())?;
        return lines(&text).try_for_each(each);
    }
    // A local file is read as it goes; an object is fetched whole first.
    let bytes;
    let source: Box<dyn Read + '_> = match location.as_path() {
        Some(path) => Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
            |e| match e.kind() {
                std::io::ErrorKind::NotFound => format!("{name}: no such file"),
                _ => format!("{name}: {e}"),
            },
        )?)),
        None => {
            bytes = location
                .read()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{name}: no such file"))?;
            if block.compression == Compression::None {
                return lines(&bytes).try_for_each(each);
            }
            Box::new(&bytes[..])
        }
    };
    match block.compression {
        Compression::None => lines_of(source, name, each),
        Compression::Gzip => lines_of(
            flate2::read::MultiGzDecoder::new(source),
            &format!("{name}: not gzip"),
            each,
        ),
        Compression::Zstd => lines_of(
            ruzstd::decoding::StreamingDecoder::new(source)
                .map_err(|e| format!("{name}: not zstd: {e}"))?,
            &format!("{name}: not zstd"),
            each,
        ),
    }
}

/// Text read a chunk at a time (a line longer than a chunk grows it).
const CHUNK: usize = 256 << 10;

/// Hands each line of `reader`'s text (as [`lines`] splits it) to `each`,
/// reading it a chunk at a time; read errors start with `context`.
fn lines_of(
    reader: impl Read,
    context: &str,
    each: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    lines_in_chunks(reader, context, CHUNK, each)
}

/// [`lines_of`], reading `chunk` bytes at a time.
fn lines_in_chunks(
    mut reader: impl Read,
    context: &str,
    chunk: usize,
    mut each: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut buf = vec![0u8; chunk.max(1)];
    // Bytes at the front of `buf` not handed out yet: a line's start.
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let read = match reader.read(&mut buf[filled..]) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{context}: {e}")),
        };
        if read == 0 {
            // The last line, without a newline.
            if filled > 0 {
                each(without_cr(&buf[..filled]))?;
            }
            return Ok(());
        }
        // Only the new bytes are searched: the kept ones hold no newline.
        let mut start = 0;
        let from = filled;
        filled += read;
        for at in memchr::memchr_iter(b'\n', &buf[from..filled]) {
            let end = from + at;
            each(without_cr(&buf[start..end]))?;
            start = end + 1;
        }
        // The partial last line moves to the front (when a line ended here:
        // a line longer than the buffer stays where it is while it grows).
        if start > 0 {
            buf.copy_within(start..filled, 0);
            filled -= start;
        }
    }
}

/// A line without the `\r` of a `\r\n` ending.
fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Compresses a text file's bytes.
pub fn compress(bytes: Vec<u8>, compression: Compression) -> Result<Vec<u8>, String> {
    use std::io::Write;
    match compression {
        Compression::None => Ok(bytes),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&bytes).map_err(|e| e.to_string())?;
            encoder.finish().map_err(|e| e.to_string())
        }
        Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            &bytes[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
    }
}

/// Runs a plan on its inputs (already decoded), handing items to `sink`.
pub fn run(
    plan: &Plan,
    inputs: &[std::sync::Arc<Records>],
    sink: &mut dyn Sink,
) -> Result<(), String> {
    match &plan.origin {
        Origin::Text(block) => run_text(block, &plan.steps, sink),
        Origin::Inputs => {
            for records in inputs {
                for item in records.0.iter() {
                    run_steps(item.clone(), &plan.steps, sink)?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plucked_field_is_parsed_alone_and_anything_else_falls_back() {
        let line = r#"{"a": {"x": [1, 2]}, "text": "hi \u00e9", "b": "\"", "text": "last"}"#;
        assert_eq!(field_of_line(line, "text"), Some(Json::from("last")));
        assert_eq!(field_of_line(r#"{"a": 1}"#, "text"), None);
        assert_eq!(field_of_line("[1, 2]", "text"), None);
        assert_eq!(field_of_line(r#"{"text": 1} trailing"#, "text"), None);
        assert_eq!(
            field_of_line(r#"{"t\u0065xt": 5}"#, "text"),
            Some(Json::from(5))
        );
    }

    #[test]
    fn lines_drop_terminators_and_a_final_newline() {
        let all = |t: &[u8]| lines(t).map(|l| l.to_vec()).collect::<Vec<_>>();
        assert_eq!(all(b"a\r\nb\n"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(all(b"a\n\nb"), vec![b"a".to_vec(), vec![], b"b".to_vec()]);
        assert!(all(b"").is_empty());
        assert_eq!(all(b"\n"), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn lines_read_in_chunks_are_the_lines_of_the_whole_text() {
        let texts: [&[u8]; 7] = [
            b"",
            b"\n",
            b"a\r\nb\n",
            b"a\n\nb",
            b"one long line without an ending",
            b"x\n\n\n",
            b"first\r\nsecond line, longer than a chunk\nthird\r\n",
        ];
        for text in texts {
            let want: Vec<Vec<u8>> = lines(text).map(|l| l.to_vec()).collect();
            for chunk in [1, 2, 3, 7, 64, 1 << 20] {
                let mut got = Vec::new();
                lines_in_chunks(text, "text", chunk, |line| {
                    got.push(line.to_vec());
                    Ok(())
                })
                .unwrap();
                assert_eq!(
                    got,
                    want,
                    "{:?} in chunks of {chunk}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    #[test]
    fn blocks_split_a_file_at_line_starts_whatever_the_block_size() {
        let dir = std::env::temp_dir().join(format!("rask-bag-blocks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lines.txt");
        let text: String = (0..500)
            .map(|i| format!("line {i} {}\n", "x".repeat(i % 37)))
            .collect();
        std::fs::write(&path, &text).unwrap();
        let size = text.len() as u64;
        for blocksize in [1u64, 7, 64, 1000, size, size + 5] {
            let mut got = Vec::new();
            let mut start = 0;
            while start < size {
                let block = TextBlock {
                    location: path.display().to_string(),
                    start,
                    end: Some((start + blocksize).min(size)),
                    compression: Compression::None,
                };
                run_text(&block, &[], &mut got).unwrap();
                start += blocksize;
            }
            let want: Vec<Json> = text.lines().map(Json::from).collect();
            assert_eq!(got, want, "blocksize {blocksize}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
