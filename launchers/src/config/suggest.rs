//! "Did you mean": the closest known key to a misspelt one.

/// Edit distance between two strings (insertions, deletions, substitutions).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a typo
/// (two edits, or a third of its letters for long keys).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (distance(&word.replace('_', "-"), c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key() {
        let keys = ["cores", "memory", "walltime", "job-extra-directives"];
        assert_eq!(closest("corse", keys), Some("cores"));
        assert_eq!(closest("wall-time", keys), Some("walltime"));
        assert_eq!(
            closest("job_extra_directives", keys),
            Some("job-extra-directives")
        );
        assert_eq!(closest("zebra", keys), None);
    }
}
