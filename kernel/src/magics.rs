//! Cell magics: lines starting with `%` that the kernel answers itself,
//! without compiling Rust. Parsed with clap, so a mistyped magic gets clap's
//! usage text.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Whether `code` is a magic cell (its first non-blank line starts with `%`).
pub fn is_magic(code: &str) -> bool {
    code.trim_start().starts_with('%')
}

/// One parsed magic.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, name = "%")]
pub struct MagicLine {
    /// What it asks for.
    #[command(subcommand)]
    pub magic: Magic,
}

/// The magics.
#[derive(Debug, Subcommand, PartialEq, Eq)]
#[command(rename_all = "lower")]
pub enum Magic {
    /// Start or attach the cluster the cells' `client` talks to.
    #[command(subcommand)]
    Cluster(ClusterMagic),
    /// The cluster's workers, threads, memory and tasks, as a table.
    Status,
    /// Ask the cluster for N workers.
    Scale {
        /// How many workers.
        workers: u32,
    },
    /// Scale between MIN and MAX workers by load.
    Adapt {
        /// Fewest workers.
        minimum: u32,
        /// Most workers.
        maximum: u32,
    },
    /// A link to the cluster's dashboard.
    Dashboard,
    /// Run the rest of the cell and report how long it took.
    Time,
}

/// `%cluster …`.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum ClusterMagic {
    /// N workers on this machine: in the kernel's process, or with
    /// `--processes` a scheduler and N stock `rask worker` processes.
    Local {
        /// How many workers.
        workers: u32,
        /// Separate processes (a scheduler and `rask worker`s) instead of threads.
        #[arg(long)]
        processes: bool,
        /// Threads per worker.
        #[arg(long, default_value_t = 1)]
        threads: u32,
    },
    /// A running scheduler, by address (`tcp://host:port`) or scheduler file.
    Connect {
        /// The scheduler's address.
        #[arg(required_unless_present = "scheduler_file")]
        address: Option<String>,
        /// A scheduler file (JSON with "address").
        #[arg(long, conflicts_with = "address")]
        scheduler_file: Option<PathBuf>,
    },
    /// A cluster from a YAML config (SLURM, PBS, SGE, LSF, local).
    Up {
        /// The config file.
        config: PathBuf,
        /// Start this many workers.
        #[arg(long, conflicts_with = "adapt")]
        workers: Option<u32>,
        /// Scale by load between MIN and MAX workers (MIN:MAX).
        #[arg(long, value_name = "MIN:MAX")]
        adapt: Option<String>,
    },
    /// Stop the cluster this kernel started (or let go of the one it joined).
    Down,
}

/// A magic cell split into the magic and the code after its line (for `%time`).
#[derive(Debug)]
pub struct MagicCell {
    /// The magic, or clap's message for a line that is not one.
    pub magic: Result<Magic, String>,
    /// The lines after the magic's.
    pub rest: String,
}

/// Parses the first line of a magic cell.
pub fn parse(code: &str) -> MagicCell {
    let code = code.trim_start();
    let (line, rest) = code.split_once('\n').unwrap_or((code, ""));
    let line = line.trim().trim_start_matches('%');
    let words = match shlex_split(line) {
        Some(words) => words,
        None => {
            return MagicCell {
                magic: Err(format!("%{line}: a quote is not closed")),
                rest: rest.to_owned(),
            }
        }
    };
    let magic = MagicLine::try_parse_from(words)
        .map(|m| m.magic)
        .map_err(|e| e.render().to_string());
    MagicCell {
        magic,
        rest: rest.to_owned(),
    }
}

/// Splits a line into words, with single and double quotes (no escapes
/// inside single quotes, as in a shell). `None` for an unclosed quote.
fn shlex_split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        q if q == c => break,
                        '\\' if c == '"' => word.push(chars.next()?),
                        other => word.push(other),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_magics_parse() {
        assert_eq!(
            parse("%cluster local 2 --processes").magic,
            Ok(Magic::Cluster(ClusterMagic::Local {
                workers: 2,
                processes: true,
                threads: 1
            }))
        );
        assert_eq!(
            parse("  %cluster connect --scheduler-file '/tmp/a b.json'").magic,
            Ok(Magic::Cluster(ClusterMagic::Connect {
                address: None,
                scheduler_file: Some("/tmp/a b.json".into())
            }))
        );
        assert_eq!(
            parse("%adapt 0 4").magic,
            Ok(Magic::Adapt {
                minimum: 0,
                maximum: 4
            })
        );
        let timed = parse("%time\nlet x = 1;");
        assert_eq!(timed.magic, Ok(Magic::Time));
        assert_eq!(timed.rest, "let x = 1;");
    }

    #[test]
    fn bad_magics_say_what_is_wrong() {
        let err = parse("%cluster local two").magic.unwrap_err();
        assert!(err.contains("two"), "{err}");
        let err = parse("%clusterr").magic.unwrap_err();
        assert!(err.contains("clusterr"), "{err}");
        let err = parse("%cluster connect").magic.unwrap_err();
        assert!(err.contains("required"), "{err}");
        assert!(parse("%cluster up 'x").magic.unwrap_err().contains("quote"));
    }
}
