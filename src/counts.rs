//! Parsing counts that must be at least one (workers, threads): zero workers
//! would leave a local cluster waiting forever.

/// Parses a positive count for clap (`--workers 0` is an error, not a hang).
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
