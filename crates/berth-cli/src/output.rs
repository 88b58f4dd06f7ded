//! How answers are shown: one [`Doc`] per command, rendered as a table for people, tab-separated text for
//! scripts, or JSON alone on stdout. Pure: `render` returns the text (snapshot-tested); `print` writes it.

use std::fmt::Write as _;

use serde_json::Value;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with headers and titled blocks.
    Table,
    /// One record per line, fields separated by tabs, no headers, no colour.
    Text,
    /// The JSON document alone, pretty-printed.
    Json,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// A command's answer: the JSON for machines and the sections people read, built from the same data.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub json: Value,
    pub sections: Vec<Section>,
}

/// A block of a [`Doc`].
#[derive(Debug, Clone)]
pub enum Section {
    /// `key  value` lines under an optional title (text: `key\tvalue`).
    Fields { title: Option<String>, fields: Vec<(String, String)> },
    /// Rows under headers (text: the rows only, tab-separated).
    Table { title: Option<String>, table: Table },
    /// Free lines (messages, events); the same in table and text.
    Lines(Vec<String>),
}

/// Rows of cells under headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

impl Doc {
    /// A document with nothing to print (a command that printed as it went).
    pub fn none() -> Doc {
        Doc::default()
    }

    pub fn is_empty(&self) -> bool {
        self.json.is_null() && self.sections.is_empty()
    }
}

/// Where and how to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: Format,
    /// ANSI colour on stdout (never in `text` or `json`).
    pub color: bool,
}

impl Output {
    /// The whole rendering of `doc`, ending with a newline unless empty.
    pub fn render(&self, doc: &Doc) -> String {
        if doc.is_empty() {
            return String::new();
        }
        match self.format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&doc.json).unwrap_or_else(|_| "null".into());
                s.push('\n');
                s
            }
            Format::Table => render_table(doc, self.color),
            Format::Text => render_text(doc),
        }
    }

    pub fn print(&self, doc: &Doc) {
        print!("{}", self.render(doc));
    }

    /// A title in bold when colour is on.
    pub fn bold(&self, s: &str) -> String {
        if self.color { format!("\x1b[1m{s}\x1b[0m") } else { s.to_string() }
    }
}

fn render_table(doc: &Doc, color: bool) -> String {
    let mut out = String::new();
    let title = |out: &mut String, t: &Option<String>| {
        if let Some(t) = t {
            if !out.is_empty() {
                out.push('\n');
            }
            if color {
                let _ = writeln!(out, "\x1b[1m{t}\x1b[0m");
            } else {
                let _ = writeln!(out, "{t}");
            }
        }
    };
    for section in &doc.sections {
        match section {
            Section::Fields { title: t, fields } => {
                title(&mut out, t);
                let indent = if t.is_some() { "  " } else { "" };
                let width = fields.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
                for (k, v) in fields {
                    let pad = width - k.chars().count();
                    let _ = writeln!(out, "{indent}{k}{}  {v}", " ".repeat(pad));
                }
            }
            Section::Table { title: t, table } => {
                title(&mut out, t);
                let indent = if t.is_some() { "  " } else { "" };
                write_columns(&mut out, indent, table, color);
            }
            Section::Lines(lines) => {
                for l in lines {
                    let _ = writeln!(out, "{l}");
                }
            }
        }
    }
    out
}

fn write_columns(out: &mut String, indent: &str, table: &Table, color: bool) {
    let cols = table.headers.len().max(table.rows.iter().map(Vec::len).max().unwrap_or(0));
    let mut widths = vec![0usize; cols];
    let cells = std::iter::once(&table.headers).chain(table.rows.iter());
    for row in cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::from(indent);
        for (i, c) in row.iter().enumerate() {
            s.push_str(c);
            if i + 1 < row.len() {
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s
    };
    if !table.headers.is_empty() {
        let h = line(&table.headers);
        if color {
            let _ = writeln!(out, "\x1b[2m{h}\x1b[0m");
        } else {
            let _ = writeln!(out, "{h}");
        }
    }
    for row in &table.rows {
        let _ = writeln!(out, "{}", line(row));
    }
}

fn render_text(doc: &Doc) -> String {
    let mut out = String::new();
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    for section in &doc.sections {
        match section {
            Section::Fields { fields, .. } => {
                for (k, v) in fields {
                    let _ = writeln!(out, "{}\t{}", clean(k), clean(v));
                }
            }
            Section::Table { table, .. } => {
                for row in &table.rows {
                    let cells: Vec<String> = row.iter().map(|c| clean(c)).collect();
                    let _ = writeln!(out, "{}", cells.join("\t"));
                }
            }
            Section::Lines(lines) => {
                for l in lines {
                    let _ = writeln!(out, "{l}");
                }
            }
        }
    }
    out
}
