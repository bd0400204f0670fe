//! Whether a cell is ready to run (Jupyter's `is_complete_request`): a Rust
//! cell is incomplete while a bracket, a string or a block comment is open,
//! and invalid where a closing bracket has no matching opener. Consoles use
//! the answer to decide between running the cell and continuing it on a new
//! line with the indent given.

/// The answer to an `is_complete_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Ready to run.
    Complete,
    /// More is needed; a new line should start with this indent.
    Incomplete {
        /// Spaces for the next line: four per open bracket.
        indent: String,
    },
    /// It can never run, whatever follows (a closing bracket with no opener).
    Invalid,
}

/// Classifies `code`, a Rust cell (or a magic line, which is always complete).
pub fn classify(code: &str) -> Completeness {
    if crate::magics::is_magic(code) {
        return Completeness::Complete;
    }
    let mut open: Vec<char> = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if chars.get(i + 1) == Some(&'*') => match block_comment_end(&chars, i) {
                Some(end) => i = end,
                None => return incomplete(open.len() + 1),
            },
            '"' => match string_end(&chars, i + 1) {
                Some(end) => i = end,
                None => return incomplete(open.len()),
            },
            'r' | 'b' | 'c' if starts_word(&chars, i) => {
                if let Some(scan) = prefixed_literal(&chars, i) {
                    match scan {
                        Some(end) => i = end,
                        None => return incomplete(open.len()),
                    }
                } else {
                    i = word_end(&chars, i);
                    continue;
                }
            }
            '\'' => i = char_literal_end(&chars, i),
            '(' | '[' | '{' => open.push(c),
            ')' | ']' | '}' => {
                let opener = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if open.pop() != Some(opener) {
                    return Completeness::Invalid;
                }
            }
            _ if c.is_alphanumeric() || c == '_' => {
                i = word_end(&chars, i);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if open.is_empty() {
        Completeness::Complete
    } else {
        incomplete(open.len())
    }
}

fn incomplete(depth: usize) -> Completeness {
    Completeness::Incomplete {
        indent: " ".repeat(4 * depth),
    }
}

/// Whether position `i` starts an identifier (not the middle of one).
fn starts_word(chars: &[char], i: usize) -> bool {
    i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The index just past the identifier or number starting at `i`.
fn word_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    i
}

/// The index of the closing quote of a string whose body starts at `i`, or
/// `None` if it never closes.
fn string_end(chars: &[char], mut i: usize) -> Option<usize> {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// `b"…"`, `c"…"`, `r"…"`, `r#"…"#`, `br#"…"#`, `b'x'` starting at `i`:
/// `Some(Some(end))` for a literal closed at `end`, `Some(None)` for one left
/// open, `None` when `i` starts an ordinary identifier.
fn prefixed_literal(chars: &[char], i: usize) -> Option<Option<usize>> {
    let mut j = i;
    if matches!(chars[j], 'b' | 'c') {
        j += 1;
        if chars.get(j) == Some(&'\'') && chars[i] == 'b' {
            return Some(Some(char_literal_end(chars, j)));
        }
        if chars.get(j) == Some(&'"') {
            return Some(string_end(chars, j + 1));
        }
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"'
            && chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some(Some(j + hashes));
        }
        j += 1;
    }
    Some(None)
}

/// The index of the last character of a char literal at `i` (`'a'`,
/// `'\n'`, `'\u{1F600}'`), or `i` itself for a lifetime or label (`'a`).
fn char_literal_end(chars: &[char], i: usize) -> usize {
    match chars.get(i + 1) {
        Some('\\') => {
            let mut j = i + 2;
            while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                j += 1;
            }
            j.min(chars.len() - 1)
        }
        Some(_) if chars.get(i + 2) == Some(&'\'') => i + 2,
        _ => i,
    }
}

/// The index of the `/` closing a (nestable) block comment opened at `i`.
fn block_comment_end(chars: &[char], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j + 1 < chars.len() {
        match (chars[j], chars[j + 1]) {
            ('/', '*') => {
                depth += 1;
                j += 2;
            }
            ('*', '/') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
                j += 2;
            }
            _ => j += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indent(n: usize) -> Completeness {
        incomplete(n)
    }

    #[test]
    fn open_brackets_strings_and_comments_are_incomplete() {
        assert_eq!(classify("fn f() {"), indent(1));
        assert_eq!(classify("let v = vec![1, (2"), indent(2));
        assert_eq!(classify("let s = \"abc"), indent(0));
        assert_eq!(classify("let s = r#\"a \" b"), indent(0));
        assert_eq!(classify("/* a /* b */"), indent(1));
        assert_eq!(classify("let b = b\"x"), indent(0));
    }

    #[test]
    fn finished_cells_are_complete() {
        assert_eq!(classify("let x = 1;"), Completeness::Complete);
        assert_eq!(
            classify("fn f<'a>(x: &'a str) -> char { '}' }"),
            Completeness::Complete
        );
        assert_eq!(classify("let s = \"{ \\\" (\";"), Completeness::Complete);
        assert_eq!(classify("let s = r##\"}\"#\"##;"), Completeness::Complete);
        assert_eq!(classify("// {\nlet x = '\\'';"), Completeness::Complete);
        assert_eq!(
            classify("let c = b'{'; let d = '\\u{7b}';"),
            Completeness::Complete
        );
        assert_eq!(classify("%cluster local 2"), Completeness::Complete);
        assert_eq!(classify("let bar = br\"(\";"), Completeness::Complete);
    }

    #[test]
    fn unmatched_closers_are_invalid() {
        assert_eq!(classify("let x = 1; }"), Completeness::Invalid);
        assert_eq!(classify("foo(]"), Completeness::Invalid);
        assert_eq!(classify("vec![1, 2)"), Completeness::Invalid);
    }
}
