//! A cell's result in one compile. evcxr shows a cell's final expression by
//! first compiling `(expr).evcxr_display()`, and compiling the whole cell a
//! second time with a `Debug` print when that method is missing, which it is
//! for most values (half a second more per cell here). The kernel rewrites
//! the final expression into a statement that picks the value's rich output
//! or its `Debug` text in one compile ([`rask::notebook::show`]).

use crate::cell_ops::{parse_cell, CELL_PRELUDE};
use ra_ap_syntax::AstNode;
use std::borrow::Cow;

/// `code` with its final expression (the cell's result) shown by
/// [`rask::notebook::show`]; unchanged when it has none, does not parse, or
/// has evcxr commands (`:dep`, `:vars`, …) for evcxr to handle.
pub fn show_final_expression(code: &str) -> Cow<'_, str> {
    if code.lines().any(|line| line.trim_start().starts_with(':')) {
        return Cow::Borrowed(code);
    }
    let Some((list, true)) = parse_cell(code) else {
        return Cow::Borrowed(code);
    };
    let Some(tail) = list.tail_expr() else {
        return Cow::Borrowed(code);
    };
    let range = tail.syntax().text_range();
    let (start, end) = (
        usize::from(range.start()) - CELL_PRELUDE.len(),
        usize::from(range.end()) - CELL_PRELUDE.len(),
    );
    Cow::Owned(format!(
        "{}{{ use rask::notebook::show::ViaDebug as _; (&({})).evcxr_display(); }};{}",
        &code[..start],
        &code[start..end],
        &code[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(expr: &str) -> String {
        format!("{{ use rask::notebook::show::ViaDebug as _; (&({expr})).evcxr_display(); }};")
    }

    #[test]
    fn the_final_expression_is_shown_in_one_statement() {
        assert_eq!(show_final_expression("1 + 1"), shown("1 + 1"));
        assert_eq!(
            show_final_expression("let v = vec![1];\nv.len() // the length\n"),
            format!("let v = vec![1];\n{} // the length\n", shown("v.len()"))
        );
        assert_eq!(
            show_final_expression("for i in 0..2 { println!(\"{i}\") }"),
            shown("for i in 0..2 { println!(\"{i}\") }")
        );
    }

    #[test]
    fn cells_without_a_result_or_with_commands_are_left_alone() {
        for code in [
            "let x = 1;",
            "println!(\"hi\");",
            "fn f() -> i32 { 1 }",
            ":dep serde\n1",
            "let x = (1;",
            "",
        ] {
            assert_eq!(show_final_expression(code), code, "{code}");
        }
    }
}
