//! Printing state for people (tables) and scripts (JSON with the tables' columns as
//! snake_case keys).

use comfy_table::{Cell, Color, Table, presets};
use serde_json::{Map, Value};
use std::io::{IsTerminal, Write};

/// Above this many rows (and without colour) tables are laid out by `render_plain`.
const PLAIN_ROWS: usize = 1000;

/// A table whose rows can also be printed as a JSON array of objects.
pub struct Grid {
    columns: Vec<&'static str>,
    rows: Vec<Vec<Value>>,
}

fn colour_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

fn state_colour(s: &str) -> Option<Color> {
    Some(match s {
        "done" | "open" | "enabled" => Color::Green,
        "error" | "aborted" | "disabled" => Color::Red,
        "running" | "reconnecting" => Color::Cyan,
        "suspended" | "canceled" => Color::Yellow,
        _ => return None,
    })
}

impl Grid {
    /// Column names as shown, in snake_case (the table upper-cases them).
    pub fn new(columns: &[&'static str]) -> Grid {
        Grid {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn row(&mut self, values: Vec<Value>) {
        debug_assert_eq!(values.len(), self.columns.len());
        self.rows.push(values);
    }

    pub fn to_json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    for (c, v) in self.columns.iter().zip(r) {
                        m.insert((*c).to_string(), v.clone());
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }

    /// The same JSON as [`Grid::to_json`], written straight out: no map per row, which
    /// matters for listings of thousands of sessions.
    pub fn json_string(&self) -> String {
        let mut out = String::with_capacity(self.rows.len() * 64 * self.columns.len() + 2);
        out.push('[');
        self.json_rows(&mut out, false);
        out.push(']');
        out
    }

    /// The rows as JSON objects separated by commas; `after_rows` when rows were
    /// already written before these (a comma goes first).
    fn json_rows(&self, out: &mut String, after_rows: bool) {
        for (i, r) in self.rows.iter().enumerate() {
            if i > 0 || after_rows {
                out.push(',');
            }
            out.push('{');
            for (k, (c, v)) in self.columns.iter().zip(r).enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(c);
                out.push_str("\":");
                out.push_str(&v.to_string());
            }
            out.push('}');
        }
    }

    /// A cell as shown: names and values may come from other users and profiles, so
    /// control and bidi characters are escaped.
    fn text(v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            Value::String(s) => soam_proto::text::escape(s).into_owned(),
            Value::Bool(b) => {
                if *b {
                    "yes".into()
                } else {
                    "no".into()
                }
            }
            other => other.to_string(),
        }
    }

    /// The layout comfy-table gives with no borders (a space of padding each side of
    /// every cell), for tables too long for it to lay out quickly.
    fn render_plain(&self) -> String {
        self.render_plain_with(&mut Vec::new(), true)
    }

    /// `render_plain` for one page of a longer listing: columns are at least `widths`
    /// wide (the pages before), which grow to fit this page; the header only if asked.
    fn render_plain_with(&self, widths: &mut Vec<usize>, header: bool) -> String {
        let head: Vec<String> = self.columns.iter().map(|c| c.to_uppercase()).collect();
        let rows: Vec<Vec<String>> = self.rows.iter().map(|r| r.iter().map(Self::text).collect()).collect();
        if widths.is_empty() {
            *widths = head.iter().map(|h| h.chars().count()).collect();
        }
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let first = header.then_some(&head);
        for r in first.into_iter().chain(rows.iter()) {
            if !out.is_empty() {
                out.push('\n');
            }
            for (c, w) in r.iter().zip(widths.iter()) {
                out.push(' ');
                out.push_str(c);
                out.extend(std::iter::repeat_n(' ', w - c.chars().count() + 1));
            }
        }
        out
    }

    pub fn render(&self) -> String {
        let colour = colour_enabled();
        if self.rows.len() > PLAIN_ROWS && !colour {
            return self.render_plain();
        }
        let mut t = Table::new();
        t.load_style(presets::NOTHING);
        t.set_header(self.columns.iter().map(|c| c.to_uppercase()));
        for r in &self.rows {
            t.add_row(r.iter().enumerate().map(|(i, v)| {
                let text = Self::text(v);
                let mut cell = Cell::new(&text);
                if colour
                    && self.columns[i] == "state"
                    && let Some(c) = state_colour(&text)
                {
                    cell = cell.fg(c);
                }
                cell
            }));
        }
        t.to_string()
    }
}

/// Prints a listing that arrives in pages. One page prints exactly as a whole listing
/// does; longer ones stream as they arrive, so a million rows never sit in memory: JSON
/// as one array written row by row, tables in the plain layout, whose columns widen
/// if a later page has wider cells.
pub struct Paged<W: Write = std::io::BufWriter<std::io::Stdout>> {
    json: bool,
    out: W,
    /// Pages written so far: the first decides the JSON opening and the one-page form.
    pages: usize,
    /// Rows written so far: the table header and JSON commas depend on it.
    rows: usize,
    /// The plain table's column widths so far.
    widths: Vec<usize>,
}

impl Paged {
    /// To stdout.
    pub fn new(json: bool) -> Paged {
        Paged::to(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()), json)
    }
}

impl<W: Write> Paged<W> {
    pub fn to(out: W, json: bool) -> Paged<W> {
        Paged {
            json,
            out,
            pages: 0,
            rows: 0,
            widths: Vec::new(),
        }
    }

    /// Writes one page; `last` when no more follow.
    pub fn page(&mut self, g: &Grid, last: bool) -> std::io::Result<()> {
        let text = if self.pages == 0 && last {
            if self.json {
                format!("{}\n", g.json_string())
            } else if g.is_empty() {
                "(none)\n".into()
            } else {
                format!("{}\n", g.render())
            }
        } else if self.json {
            let mut t = String::new();
            if self.pages == 0 {
                t.push('[');
            }
            g.json_rows(&mut t, self.rows > 0);
            if last {
                t.push_str("]\n");
            }
            t
        } else if self.rows == 0 && g.is_empty() {
            if last { "(none)\n".into() } else { String::new() }
        } else {
            let header = self.rows == 0;
            let mut t = g.render_plain_with(&mut self.widths, header);
            if !t.is_empty() {
                t.push('\n');
            }
            t
        };
        self.pages += 1;
        self.rows += g.rows.len();
        self.out.write_all(text.as_bytes())?;
        if last { self.out.flush() } else { Ok(()) }
    }

    /// Writes text as it is (profile listings); `last` when no more follows.
    pub fn raw(&mut self, text: &str, last: bool) -> std::io::Result<()> {
        self.pages += 1;
        self.out.write_all(text.as_bytes())?;
        if last { self.out.flush() } else { Ok(()) }
    }
}

/// Whether an error is stdout's reader having gone (`soamview task X | head -1`): the
/// command then ends quietly, as Unix tools do.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_layout_and_direct_json_match_the_library_ones() {
        let mut g = Grid::new(&["app", "id", "state", "holder"]);
        g.row(vec![json!("sampleApp"), json!(12), json!("open"), json!(null)]);
        g.row(vec![json!("b"), json!(3), json!("aborted"), json!("pid 7 \"x\"")]);
        // Non-ASCII text is padded by characters, as comfy-table does.
        g.row(vec![json!("état"), json!(1), json!("open"), json!(true)]);
        let mut t = Table::new();
        t.load_style(presets::NOTHING);
        t.set_header(g.columns.iter().map(|c| c.to_uppercase()));
        for r in &g.rows {
            t.add_row(r.iter().map(Grid::text));
        }
        assert_eq!(g.render_plain(), t.to_string());
        let direct: Value = serde_json::from_str(&g.json_string()).unwrap();
        assert_eq!(direct, g.to_json());
    }

    fn grid(ids: std::ops::Range<u64>) -> Grid {
        let mut g = Grid::new(&["task", "state"]);
        for i in ids {
            g.row(vec![json!(i), json!(if i % 2 == 0 { "done" } else { "pending" })]);
        }
        g
    }

    /// Pages in, as the agent sends them (empty ones too: a filter's bounded scan may
    /// find nothing in a stretch): out comes the same listing as one page would give.
    fn paged(pages: &[std::ops::Range<u64>], json: bool) -> String {
        let mut p = Paged::to(Vec::new(), json);
        for (i, r) in pages.iter().enumerate() {
            p.page(&grid(r.clone()), i + 1 == pages.len()).unwrap();
        }
        String::from_utf8(p.out).unwrap()
    }

    #[test]
    fn pages_print_as_one_listing() {
        let pages = [0..0, 1..4, 4..4, 4..1200, 1200..1201, 1201..1201];
        let whole = grid(1..1201);
        let json: Value = serde_json::from_str(&paged(&pages, true)).unwrap();
        assert_eq!(json, whole.to_json());
        // Widths settle in the first page with rows here, so the text is the whole's.
        assert_eq!(paged(&pages[..5], false), format!("{}\n", whole.render_plain()));
        assert_eq!(paged(&[0..0, 0..0], false), "(none)\n");
        assert_eq!(paged(&[0..0, 0..0], true).trim(), "[]");
        // One page: exactly the whole listing's form.
        assert_eq!(paged(&[1..4], true), format!("{}\n", grid(1..4).json_string()));
    }
}
