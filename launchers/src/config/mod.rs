//! YAML cluster configs: one backend section (`local`, `slurm`, `pbs`, `sge`,
//! `lsf`), optionally under dask-jobqueue's `jobqueue:` key, with
//! dask-jobqueue's key names. Unknown keys, wrong types and bad values are
//! errors that name the file, line and column, with a "did you mean" for
//! misspelt keys.
//!
//! ```yaml
//! slurm:
//!   cores: 4
//!   memory: 16GiB
//!   walltime: "01:00:00"
//!   adaptive: {minimum: 0, maximum: 8}
//! ```

mod schema;
mod suggest;
pub mod values;

pub use schema::{Adaptive, Backend, ClusterConfig, JobQueue, Kubernetes, Local};

use std::fmt;
use std::path::Path;

/// A config that cannot be used, and where.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file (or `<string>`).
    pub file: String,
    /// 1-based line and column, when known.
    pub at: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Drops the parser's " at line L column C" (the location is reported in
/// front) and adds "did you mean" to unknown-key messages.
fn explain(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    // serde: "slurm: unknown field `corse`, expected one of `a`, `b`".
    let Some(start) = message.find("unknown field `") else {
        return message.to_string();
    };
    let rest = &message[start + "unknown field `".len()..];
    let Some((word, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match suggest::closest(word, known.iter().copied()) {
        Some(guess) => format!("{message}; did you mean `{guess}`?"),
        None => message.to_string(),
    }
}

/// Where the bad value a message quotes (`bad memory "lots": ...`) sits in
/// `text`: value errors are reported by the parser at the enclosing mapping,
/// so the value itself is looked up.
fn find_value(text: &str, message: &str) -> Option<(usize, usize)> {
    let start = message.find('"')?;
    let mut end = start + 1;
    let bytes = message.as_bytes();
    while end < bytes.len() && bytes[end] != b'"' {
        end += if bytes[end] == b'\\' { 2 } else { 1 };
    }
    let quoted = message.get(start..=end)?;
    let raw: String = serde_json::from_str(quoted).ok()?;
    text.lines().enumerate().find_map(|(n, line)| {
        let content = line.split(" #").next().unwrap_or(line);
        let column = content
            .find(quoted)
            .or_else(|| content.find(&format!(": {raw}")).map(|c| c + 2))
            .filter(|_| !raw.is_empty())?;
        Some((n + 1, column + 1))
    })
}

/// The 1-based line and column of `key:` in `text`, for errors found after
/// parsing (the first occurrence; configs rarely repeat a key).
fn find_key(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(n, line)| {
        let trimmed = line.trim_start();
        let column = line.len() - trimmed.len();
        trimmed
            .strip_prefix(key)
            .filter(|rest| rest.trim_start().starts_with(':'))
            .map(|_| (n + 1, column + 1))
    })
}

impl ClusterConfig {
    /// Reads and checks a config file.
    pub fn load(path: impl AsRef<Path>) -> Result<ClusterConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            at: None,
            message: e.to_string(),
        })?;
        ClusterConfig::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a config held in `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<ClusterConfig, ConfigError> {
        let raw: schema::File = serde_yaml_ng::from_str(text).map_err(|e| {
            let message = explain(&e.to_string());
            let parsed = e.location().map(|l| (l.line(), l.column()));
            ConfigError {
                file: file.to_string(),
                at: find_value(text, &message).or(parsed),
                message,
            }
        })?;
        raw.into_config().map_err(|(key, message)| ConfigError {
            file: file.to_string(),
            at: key.and_then(|k| find_key(text, k)),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_place_and_guess_the_key() {
        let e = ClusterConfig::parse("slurm:\n  cores: 4\n  memroy: 8GiB\n", "c.yaml").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("c.yaml:3:3: slurm: unknown field `memroy`"),
            "{text}"
        );
        assert!(text.contains("did you mean `memory`?"), "{text}");
        let e = ClusterConfig::parse("slurm:\n  cores: four\n", "c.yaml").unwrap_err();
        assert!(e.to_string().starts_with("c.yaml:2:10: "), "{e}");
        let e = ClusterConfig::parse(
            "slurm:\n  cores: 2\n  memory: 1GiB\n  processes: 3\n",
            "c.yaml",
        )
        .unwrap_err();
        assert_eq!(e.at, Some((4, 3)), "{e}");
        let e = ClusterConfig::parse("slurn:\n  cores: 2\n", "c.yaml").unwrap_err();
        assert!(e.to_string().contains("did you mean `slurm`?"), "{e}");
    }
}
