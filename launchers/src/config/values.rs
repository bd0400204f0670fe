//! Typed values of a cluster config: sizes, durations, and strings that are
//! safe to put into a job script.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A memory size in bytes, written as `16GiB`, `4000MB` or a number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory(pub u64);

impl<'de> Deserialize<'de> for Memory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(n) => Ok(Memory(n)),
            Raw::Text(text) => {
                let has_unit = text.trim().ends_with(|c: char| c.is_ascii_alphabetic());
                if !has_unit && text.trim().parse::<u64>().is_err() {
                    return Err(serde::de::Error::custom(format!(
                        "bad memory {text:?}: give a size such as 16GiB or 4000MB"
                    )));
                }
                if text.trim().eq_ignore_ascii_case("auto") {
                    return Err(serde::de::Error::custom(
                        "bad memory \"auto\": a job needs an explicit size such as 16GiB",
                    ));
                }
                rask::worker::memory::parse_memory_limit(&text)
                    .map(Memory)
                    .map_err(serde::de::Error::custom)
            }
        }
    }
}

impl Memory {
    /// Whole mebibytes, rounded down (what `--mem` and `mem=` take).
    pub fn mebibytes(self) -> u64 {
        self.0 >> 20
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", rask::array::human_bytes(self.0 as usize))
    }
}

/// A wall-clock limit in seconds, written `HH:MM:SS`, `MM:SS`, `D-HH:MM:SS`
/// (SLURM's forms) or a number of minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walltime(pub u64);

impl Walltime {
    /// Parses the forms above.
    pub fn parse(text: &str) -> Result<Walltime, String> {
        let bad = || format!("bad walltime {text:?}: use HH:MM:SS, D-HH:MM:SS or minutes");
        let (days, rest) = match text.split_once('-') {
            Some((d, rest)) => (d.parse::<u64>().map_err(|_| bad())?, rest),
            None => (0, text),
        };
        let parts: Vec<u64> = rest
            .split(':')
            .map(|p| p.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let seconds = match parts[..] {
            [minutes] if days == 0 => minutes * 60,
            [hours] => hours * 3600,
            [minutes, seconds] if days == 0 => minutes * 60 + seconds,
            [hours, minutes] => hours * 3600 + minutes * 60,
            [hours, minutes, seconds] => hours * 3600 + minutes * 60 + seconds,
            _ => return Err(bad()),
        };
        if seconds == 0 && days == 0 {
            return Err(format!("bad walltime {text:?}: it must be more than zero"));
        }
        Ok(Walltime(days * 86400 + seconds))
    }

    /// `HH:MM:SS` (hours may pass 24).
    pub fn hms(self) -> String {
        format!(
            "{:02}:{:02}:{:02}",
            self.0 / 3600,
            self.0 / 60 % 60,
            self.0 % 60
        )
    }

    /// `HH:MM` (LSF's `-W`), rounded up to the minute.
    pub fn hm(self) -> String {
        let minutes = self.0.div_ceil(60);
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

impl<'de> Deserialize<'de> for Walltime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Minutes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Minutes(0) => Err(serde::de::Error::custom(
                "bad walltime 0: it must be more than zero",
            )),
            Raw::Minutes(m) => Ok(Walltime(m * 60)),
            Raw::Text(text) => Walltime::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// Text that goes into a job script: no newlines or other control characters,
/// so it can never end a directive line and start a command. (It is also
/// quoted wherever the shell reads it.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text(pub String);

impl Text {
    /// Checks `value`.
    pub fn new(value: String) -> Result<Text, String> {
        match value.chars().find(|c| c.is_control()) {
            Some(c) => Err(format!(
                "{value:?} contains the control character {c:?}; job script values must be one line"
            )),
            None => Ok(Text(value)),
        }
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Text::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name the batch system sees (job name, queue, account, project): letters,
/// digits and `._-+@`, which every scheduler's directive parser takes as is,
/// and not dots alone (it also names the job script file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        let ok = !value.is_empty()
            && value.chars().any(|c| c != '.')
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+@".contains(c));
        if ok {
            Ok(Name(value))
        } else {
            Err(serde::de::Error::custom(format!(
                "bad name {value:?}: use letters, digits and . _ - + @ only, not dots alone"
            )))
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walltimes_read_slurm_forms() {
        assert_eq!(Walltime::parse("01:30:00"), Ok(Walltime(5400)));
        assert_eq!(Walltime::parse("90"), Ok(Walltime(5400)));
        assert_eq!(Walltime::parse("1-00:00:00"), Ok(Walltime(86400)));
        assert_eq!(Walltime::parse("30:15"), Ok(Walltime(1815)));
        assert!(Walltime::parse("soon").is_err());
        assert!(Walltime::parse("00:00:00").is_err());
        assert_eq!(Walltime(5400).hms(), "01:30:00");
        assert_eq!(Walltime(61).hm(), "00:02");
    }
}
