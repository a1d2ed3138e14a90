//! `--html FILE`: one self-contained interactive page per command.
//!
//! A page is a view of a report, not a second implementation: it embeds the
//! JSON the command prints with `--json` (under `report`) plus the per-step
//! data the command can emit (policy state, allocator states, the engine's
//! translation events), and an inline script renders them. Nothing is
//! fetched: styles, scripts and data are all in the one file, so it opens
//! from a mail attachment or a course page with no network.
//!
//! This module owns the page shell (the shared style sheet and the stepper
//! script in `assets/`), the escaping of the embedded data and the atomic
//! write through [`vmsim_trace::output`]. Each submodule builds one
//! command's data; the command modules only call them.
//!
//! Escaping: the data goes into `<script type="application/json">` with
//! `<`, `>`, `&`, U+2028 and U+2029 written as JSON `\u` escapes, so no
//! string in it (a trace path, a scenario description) can close the
//! element or start markup; the script reads it with `JSON.parse` and puts
//! text into the page with `textContent`, never as HTML.

pub mod alloc;
pub mod explain;
pub mod policy;
pub mod run;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

/// Version of the embedded data's layout (`data.schema_version` in the page).
pub const PAGE_SCHEMA_VERSION: u32 = 1;

const COMMON_CSS: &str = include_str!("assets/common.css");
const COMMON_JS: &str = include_str!("assets/common.js");

/// Which page: selects the renderer script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `vmsim explain`.
    Explain,
    /// `vmsim policy`.
    Policy,
    /// `vmsim alloc`.
    Alloc,
    /// `vmsim run`.
    Run,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Explain => "explain",
            Self::Policy => "policy",
            Self::Alloc => "alloc",
            Self::Run => "run",
        }
    }

    fn script(self) -> &'static str {
        match self {
            Self::Explain => include_str!("assets/explain.js"),
            Self::Policy => include_str!("assets/policy.js"),
            Self::Alloc => include_str!("assets/alloc.js"),
            Self::Run => include_str!("assets/run.js"),
        }
    }
}

/// The command line as a shell would need it typed (arguments with spaces
/// or quotes single-quoted), for the page's header.
#[must_use]
pub fn command_line() -> String {
    let mut parts = vec!["vmsim".to_owned()];
    for a in std::env::args().skip(1) {
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=.,:/+@%^".contains(c) || !c.is_ascii());
        if plain {
            parts.push(a);
        } else {
            parts.push(format!("'{}'", a.replace('\'', r"'\''")));
        }
    }
    parts.join(" ")
}

/// `data` as the text of a `<script type="application/json">` element: JSON
/// with every character that could end the element or start markup escaped.
#[must_use]
pub fn script_json(data: &Value) -> String {
    let text = data.to_string();
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `text` for an HTML text node or attribute value.
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page: the shell, the shared style and stepper, the page's
/// renderer and `data` (to which the page kind, the command line, the
/// version and `schema_version` are added).
#[must_use]
pub fn render(kind: Kind, title: &str, mut data: Value) -> String {
    if let Value::Object(m) = &mut data {
        m.insert("page".into(), json!(kind.name()));
        m.insert("schema_version".into(), json!(PAGE_SCHEMA_VERSION));
        m.insert("command".into(), json!(command_line()));
        m.insert("vmsim_version".into(), json!(env!("CARGO_PKG_VERSION")));
        m.insert("title".into(), json!(title));
    }
    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str("<meta name=\"generator\" content=\"vmsim ");
    page.push_str(env!("CARGO_PKG_VERSION"));
    page.push_str("\">\n<title>");
    page.push_str(&escape_html(title));
    page.push_str("</title>\n<style>\n");
    page.push_str(COMMON_CSS);
    page.push_str("</style>\n</head>\n<body data-page=\"");
    page.push_str(kind.name());
    page.push_str("\">\n<noscript><p class=\"noscript\">This page draws its figures with JavaScript; the data is in the JSON below.</p></noscript>\n");
    page.push_str("<div id=\"app\"></div>\n<script type=\"application/json\" id=\"vmsim-data\">");
    page.push_str(&script_json(&data));
    page.push_str("</script>\n<script>\n\"use strict\";\n");
    page.push_str(COMMON_JS);
    page.push('\n');
    page.push_str(kind.script());
    page.push_str("\n</script>\n</body>\n</html>\n");
    page
}

/// Refuses an `--html` destination that exists and is not a regular file,
/// before the command runs (so nothing is printed for a page that cannot
/// be written).
///
/// # Errors
/// `path` is a directory, a symbolic link, a device, a FIFO or a socket.
pub fn check(path: Option<&Path>) -> anyhow::Result<()> {
    if let Some(p) = path {
        vmsim_trace::output::check_destination(p)
            .with_context(|| format!("--html {}: cannot write the page", p.display()))?;
    }
    Ok(())
}

/// Writes the page to `path` atomically (a temporary file renamed into
/// place; never over anything but a regular file).
///
/// # Errors
/// The directory is not writable, or `path` names something that is not a
/// regular file.
pub fn write(path: &Path, kind: Kind, title: &str, data: Value) -> anyhow::Result<()> {
    let page = render(kind, title, data);
    let what = || format!("--html {}: cannot write the page", path.display());
    let tmp = vmsim_trace::output::temp_next_to(path).with_context(what)?;
    tmp.as_file()
        .write_all(page.as_bytes())
        .with_context(what)?;
    vmsim_trace::output::commit(tmp, path).with_context(what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_the_script_element() {
        let v = json!({"path": "a</script><script>alert(1)</script>&\u{2028}"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        assert!(!s.contains('\u{2028}'));
        let back: Value = serde_json::from_str(&s).expect("still JSON");
        assert_eq!(back, v);
    }

    #[test]
    fn html_text_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn page_has_no_external_reference() {
        let page = render(Kind::Policy, "t</title>", json!({"report": {}}));
        assert!(page.contains("<title>t&lt;/title&gt;</title>"));
        for bad in ["src=\"http", "href=\"http", "@import", "url(http", "fetch("] {
            assert!(!page.contains(bad), "{bad}");
        }
        assert_eq!(page.matches("</script>").count(), 2);
    }
}
