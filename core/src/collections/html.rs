//! Small pieces of HTML shared by the collections' `to_html` summaries.

/// `text` with `&`, `<`, `>` and `"` escaped for HTML.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
