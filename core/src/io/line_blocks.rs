//! Text files split into blocks of about `blocksize` bytes at line starts, the
//! way Dask's `read_text` and `read_csv` split theirs: each block is read with
//! ranged reads, so a worker reads only its own part of a large file (and a
//! little past it, to finish its last line).

use super::location::{Location, StoreError};

/// The byte ranges `[start, end)` of blocks of `blocksize` bytes covering a
/// file of `size` bytes (one empty range for an empty file). A block's lines
/// are those that start inside it, so each line belongs to exactly one block.
pub fn bounds(size: u64, blocksize: u64) -> Vec<(u64, u64)> {
    let blocksize = blocksize.max(1);
    if size == 0 {
        return vec![(0, 0)];
    }
    (0..size.div_ceil(blocksize))
        .map(|i| (i * blocksize, ((i + 1) * blocksize).min(size)))
        .collect()
}

/// The bytes of the lines that start in `[start, end)`: from the first line
/// start at or after `start` to the end (newline included) of the last line
/// that starts before `end`, which may run past `end`.
pub fn read(location: &Location, start: u64, end: u64) -> Result<Vec<u8>, StoreError> {
    // One byte before the start says whether a line starts exactly there.
    let from = start.saturating_sub(1);
    let mut bytes = location.read_range(from, end)?;
    let skip = if start == 0 {
        0
    } else {
        newline(&bytes).map_or(bytes.len(), |at| at + 1)
    };
    // The last line runs on past `end` to its newline.
    let mut at = from + bytes.len() as u64;
    let mut step = 64u64 << 10;
    while skip < bytes.len() && bytes.last() != Some(&b'\n') {
        let more = location.read_range(at, at + step)?;
        if more.is_empty() {
            break;
        }
        if let Some(nl) = newline(&more) {
            bytes.extend_from_slice(&more[..=nl]);
            break;
        }
        at += more.len() as u64;
        bytes.extend_from_slice(&more);
        step = (step * 2).min(64 << 20);
    }
    bytes.drain(..skip.min(bytes.len()));
    Ok(bytes)
}

fn newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_in_exactly_one_block_at_every_blocksize() {
        let dir = std::env::temp_dir().join(format!("rask-line-blocks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let texts: [&[u8]; 4] = [b"a\nbb\n\nccc\nd", b"one\r\ntwo\r\n", b"\n\n\n", b"x"];
        for (n, text) in texts.iter().enumerate() {
            let path = dir.join(format!("{n}.txt"));
            std::fs::write(&path, text).unwrap();
            let location = Location::parse(path.to_str().unwrap()).unwrap();
            for blocksize in 1..=text.len() as u64 + 1 {
                let joined: Vec<u8> = bounds(text.len() as u64, blocksize)
                    .into_iter()
                    .flat_map(|(start, end)| read(&location, start, end).unwrap())
                    .collect();
                assert_eq!(joined, *text, "file {n}, blocksize {blocksize}");
            }
        }
        assert_eq!(bounds(0, 10), vec![(0, 0)]);
        assert_eq!(bounds(25, 10), vec![(0, 10), (10, 20), (20, 25)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
