//! A cell's result, shown in one compile. evcxr shows a cell's final
//! expression by compiling `(expr).evcxr_display()` and, when the value has
//! no such method (an integer, a `Vec`: most values), compiling the cell
//! again with a `Debug` print: two compiles for most cells. The rask kernel
//! instead rewrites the final expression into `(&(expr)).evcxr_display()`
//! with [`ViaDebug`] in scope, which Rust's method lookup resolves in one
//! compile to, in order:
//!
//! 1. the value's own `evcxr_display` method (evcxr's convention: rask's
//!    arrays and dataframes, plotters' figures, a cell's own types);
//! 2. [`RichResult`] (Polars frames, `()`, the session's `client`);
//! 3. `Debug`: the value as `{:?}`, as evcxr shows it.
//!
//! The first two take `&T`, which the lookup tries before [`ViaDebug`]'s
//! `&&T`; and an inherent method goes before a trait's.

use super::{show_result, RichResult};
use std::fmt::Debug;

/// Shows a result as its `Debug` text, when it has no rich output.
pub trait ViaDebug {
    /// Shows the result (as evcxr's fallback does).
    fn evcxr_display(&self);
}

impl<T: Debug + ?Sized> ViaDebug for &T {
    fn evcxr_display(&self) {
        show_result(&[("text/plain", &format!("{:?}", *self))]);
    }
}

/// `()` (a final `println!(..)`, a `for` loop): nothing to show.
impl RichResult for () {
    fn evcxr_display(&self) {}
}

/// The session's `client`: which cluster it is attached to.
impl RichResult for super::SessionClient {
    fn evcxr_display(&self) {
        show_result(&[("text/plain", &self.to_string())]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::last_shown;
    use super::*;

    #[derive(Debug)]
    struct Plain;

    #[derive(Debug)]
    struct Own;
    impl Own {
        fn evcxr_display(&self) {
            show_result(&[("text/plain", "its own")]);
        }
    }

    fn shown(show: impl FnOnce()) -> Option<String> {
        show();
        last_shown()
    }

    // Exactly the form the kernel writes, `(&(expr)).evcxr_display()`.
    #[allow(clippy::needless_borrow, clippy::double_parens)]
    #[test]
    fn the_lookup_picks_the_values_own_method_then_rich_output_then_debug() {
        assert_eq!(
            shown(|| (&(Own)).evcxr_display()).as_deref(),
            Some("its own")
        );
        let client = super::super::SessionClient;
        assert_eq!(
            shown(|| (&(client)).evcxr_display()).as_deref(),
            Some("Client (no cluster attached)")
        );
        assert_eq!(shown(|| (&(())).evcxr_display()), None);
        assert_eq!(
            shown(|| (&(Plain)).evcxr_display()).as_deref(),
            Some("Plain")
        );
        assert_eq!(
            shown(|| (&(vec![1, 2])).evcxr_display()).as_deref(),
            Some("[1, 2]")
        );
        assert_eq!(
            shown(|| (&("text")).evcxr_display()).as_deref(),
            Some("\"text\"")
        );
        let array = crate::array::arange(0i64, 10, 1, 5).unwrap();
        let text = shown(|| (&(array)).evcxr_display()).unwrap();
        assert!(text.starts_with("rask.array<"), "{text}");
    }
}
