//! Printing state for people and scripts from one typed row per view.
//!
//! A view (sessions, tasks, applications, allocations) is a list of [`Row`]s: plain
//! serde structs holding every field the agent knows. `--json` serialises them as they
//! are (numbers as numbers, lists as arrays, times as RFC 3339 with milliseconds beside
//! their epoch milliseconds). Tables are drawn from the same serialised row: a
//! [`Layout`] picks the columns (`-o`, or the view's default set) and turns each value
//! into a cell by its [`Kind`]; times become local time with an age. Listings arrive in
//! pages and stream through [`Paged`], so a million rows never sit in memory.

use crate::cells::{self, Grid};
use clap::Args;
use comfy_table::{Cell, Color, ColumnConstraint, ContentArrangement, Table, presets};
use jiff::tz::TimeZone;
use jiff::{Span, SpanRound, Timestamp, Unit};
use serde::{Serialize, Serializer};
use std::io::{IsTerminal, Write};

/// Above this many rows (and without colour) tables are laid out by `render_plain`:
/// comfy-table's layout is quadratic-ish in rows.
const PLAIN_ROWS: usize = 1000;

/// Spaces after each cell: no padding before, so a table starts at the margin and
/// loses no width to it.
const GAP: usize = 2;

pub use crate::cells::Kind;

/// One column a view can show.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub name: &'static str,
    pub kind: Kind,
    /// Free text (names, reasons) that may wrap to fit the terminal; other columns
    /// (ids, counts, states, times) keep their width, so they never break mid-value.
    pub wrap: bool,
    /// The table's header for it, where shorter than the upper-cased name (a count
    /// column as wide as its word would take width the names need).
    pub title: Option<&'static str>,
}

impl Col {
    pub const fn titled(self, title: &'static str) -> Col {
        Col {
            title: Some(title),
            ..self
        }
    }
}

/// A value that keeps its width: an id, a count, a state.
pub const fn col(name: &'static str) -> Col {
    Col {
        name,
        kind: Kind::Text,
        wrap: false,
        title: None,
    }
}
/// Free text, wrapped to fit the terminal where it must.
pub const fn text_col(name: &'static str) -> Col {
    Col {
        name,
        kind: Kind::Text,
        wrap: true,
        title: None,
    }
}
pub const fn time_col(name: &'static str) -> Col {
    Col {
        name,
        kind: Kind::Time,
        wrap: false,
        title: None,
    }
}
pub const fn list_col(name: &'static str) -> Col {
    Col {
        name,
        kind: Kind::List,
        wrap: true,
        title: None,
    }
}

/// A view's row: what `--json` prints for it, and what its table is drawn from.
pub trait Row: Serialize {
    /// Every column a table of these rows can show, in their usual order.
    const COLUMNS: &'static [Col];
    /// The fields [`Row::field`] writes, by number, with their serialized names: for
    /// the long listings, whose tables then visit only the fields shown instead of
    /// serializing every field of every row. Empty: the table reads `serialize`.
    const FIELDS: &'static [&'static str] = &[];
    /// Writes field number `i` of [`Row::FIELDS`] to `cell`: the value `serialize`
    /// gives that field (`tests::fields_write_what_serialize_gives` holds each row
    /// type to it).
    fn field(&self, i: usize, cell: crate::cells::Cell<'_>) {
        let _ = (i, cell);
    }
}

/// So a page can be rows made as they are written or rows held elsewhere.
impl<R: Row> Row for &R {
    const COLUMNS: &'static [Col] = R::COLUMNS;
    const FIELDS: &'static [&'static str] = R::FIELDS;
    fn field(&self, i: usize, cell: crate::cells::Cell<'_>) {
        (**self).field(i, cell)
    }
}

/// The zone local times are shown in: `TZ` when set, else `/etc/localtime` read as a
/// zone file. jiff's own lookup of the system zone finds its name first, by listing
/// every file under /usr/share/zoneinfo: over a millisecond of every command's start,
/// for a name a table never shows.
fn local_zone() -> TimeZone {
    if std::env::var_os("TZ").is_none()
        && let Ok(data) = std::fs::read("/etc/localtime")
        && let Ok(tz) = TimeZone::tzif("localtime", &data)
    {
        return tz;
    }
    TimeZone::try_system().unwrap_or(TimeZone::UTC)
}

/// An instant: RFC 3339 in UTC with milliseconds in JSON (`2026-11-22T20:31:11.042Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub u64);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Written into the output as it is formatted: no string made for each time.
        s.collect_str(&Rfc3339(self.0))
    }
}

pub fn rfc3339(ms: u64) -> String {
    Rfc3339(ms).to_string()
}

/// Milliseconds since the epoch as RFC 3339 in UTC with milliseconds; the number itself
/// where jiff cannot represent the instant. jiff's RFC 3339 printer (its `Display` with
/// a precision), not `strftime`, which parses its format anew for every time, a large
/// share of a big `soamview session --json` (docs/benchmarks.md).
struct Rfc3339(u64);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Timestamp::from_millisecond(self.0 as i64) {
            Ok(t) => write!(f, "{t:.3}"),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

/// Table flags every listing shares.
#[derive(Debug, Clone, Default, Args)]
pub struct TableArgs {
    /// Table columns to show, comma-separated (`-o all` for every one); --json always has every field
    #[arg(short = 'o', long = "columns", value_name = "COL,...", value_delimiter = ',', global = true)]
    pub columns: Vec<String>,
    /// Leave out the table's header line
    #[arg(long, global = true)]
    pub no_header: bool,
    /// Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one
    /// from the largest; empty values last. Tables and --json alike. Without it, the
    /// agent's order (by id)
    #[arg(long, value_name = "[-]COL,...", value_delimiter = ',', allow_hyphen_values = true, global = true)]
    pub sort: Vec<String>,
}

/// A column by any name a user sees: its JSON key (a time's also with `_ms`) or its table
/// header, in any case.
fn find_col<R: Row>(name: &str) -> Option<Col> {
    R::COLUMNS
        .iter()
        .find(|c| {
            c.name.eq_ignore_ascii_case(name)
                || c.title.is_some_and(|t| t.eq_ignore_ascii_case(name))
                || (c.kind == Kind::Time && name.to_ascii_lowercase().strip_suffix("_ms") == Some(c.name))
        })
        .copied()
}

/// The usage error for a column name that is none of `R`'s: the valid ones, and the
/// nearest.
fn unknown_col<R: Row>(name: &str) -> anyhow::Error {
    let valid: Vec<&str> = R::COLUMNS.iter().map(|c| c.name).collect();
    let names = R::COLUMNS.iter().flat_map(|c| [Some(c.name), c.title]).flatten();
    let hint = crate::common::did_you_mean(name, names)
        .map(|m| format!("; did you mean '{}'?", m.to_ascii_lowercase()))
        .unwrap_or_default();
    anyhow::Error::new(crate::common::UsageError(format!(
        "unknown column '{name}'{hint} (valid: {}, or all)",
        valid.join(", ")
    )))
}

/// The field a column's value is in: its name, or `NAME_ms` for a time (whose shown
/// text is local time; the number sorts and the cell is drawn from it).
fn col_key(c: &Col) -> String {
    match c.kind {
        Kind::Time => format!("{}_ms", c.name),
        _ => c.name.to_string(),
    }
}

/// Orders two values of one sort column: numbers as numbers, text as text, lists by
/// their text, and an empty value (null, missing) after every other whichever the
/// direction.
fn cmp_values(a: Option<&serde_json::Value>, b: Option<&serde_json::Value>, desc: bool) -> std::cmp::Ordering {
    use serde_json::Value as V;
    use std::cmp::Ordering;
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    let o = match (a, b) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Greater,
        (Some(_), None) => return Ordering::Less,
        (Some(V::Number(x)), Some(V::Number(y))) => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Some(V::String(x)), Some(V::String(y))) => x.cmp(y),
        (Some(V::Bool(x)), Some(V::Bool(y))) => x.cmp(y),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    };
    if desc { o.reverse() } else { o }
}

/// The chosen columns of one view and how to draw them.
#[derive(Debug, Clone)]
pub struct Layout {
    cols: Vec<Col>,
    /// The row field each column shows: its name, or `NAME_ms` for a time column.
    keys: Vec<String>,
    /// How each column shows its field.
    kinds: Vec<Kind>,
    header: bool,
    colour: bool,
    /// Fit the terminal's width (a person is reading; pipes get whole lines).
    fit: bool,
    tz: TimeZone,
    now_ms: u64,
    /// Times already shown, by (second, age in seconds): what `local` prints depends on
    /// nothing finer, and rows made together share them (10,000 sessions created in a
    /// few seconds format a handful of times instead of 10,000).
    shown: std::cell::RefCell<rustc_hash::FxHashMap<(u64, i64), String>>,
    /// Where each field of a row goes among `keys`, worked out on the first row.
    plan: std::cell::RefCell<crate::cells::Plan>,
    /// Each column's number in the row type's [`Row::FIELDS`], when it has them all.
    fields: Option<Vec<usize>>,
    /// `--sort`: the field of each sort column, and whether it sorts from the largest.
    sort: Vec<(String, bool)>,
}

/// The terminal's width on stdout, where it reports one. A terminal that reports 0
/// columns (a pty nobody sized, as `script` makes) has no known width: fitting a table
/// to it would squeeze every column to one character.
fn terminal_columns() -> Option<u16> {
    // SAFETY: TIOCGWINSZ fills the winsize it is given; a failure leaves it zeroed.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col)
}

/// The terminal's height on stdout, where it reports one (see [`terminal_columns`]).
pub fn terminal_rows() -> Option<u16> {
    // SAFETY: as in `terminal_columns`.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_row > 0).then_some(ws.ws_row)
}

impl Layout {
    /// The columns `args` chose among `R`'s, or `default` when it chose none; an unknown
    /// column is an error that lists the valid ones.
    pub fn new<R: Row>(args: &TableArgs, default: &[&str]) -> anyhow::Result<Layout> {
        let cols: Vec<Col> = if args.columns.iter().any(|c| c == "all") {
            R::COLUMNS.to_vec()
        } else if args.columns.is_empty() {
            default.iter().filter_map(|n| find_col::<R>(n)).collect()
        } else {
            args.columns
                .iter()
                .map(|n| find_col::<R>(n.trim()).ok_or_else(|| unknown_col::<R>(n.trim())))
                .collect::<anyhow::Result<_>>()?
        };
        let sort = args
            .sort
            .iter()
            .map(|n| {
                let n = n.trim();
                let (name, desc) = n.strip_prefix('-').map_or((n, false), |n| (n, true));
                find_col::<R>(name)
                    .map(|c| (col_key(&c), desc))
                    .ok_or_else(|| unknown_col::<R>(name))
            })
            .collect::<anyhow::Result<_>>()?;
        let kinds = cols.iter().map(|c| c.kind).collect();
        let keys: Vec<String> = cols.iter().map(col_key).collect();
        let fields = keys.iter().map(|k| R::FIELDS.iter().position(|f| *f == k.as_str())).collect();
        let out = std::io::stdout();
        Ok(Layout {
            cols,
            keys,
            kinds,
            header: !args.no_header,
            colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && out.is_terminal(),
            fit: out.is_terminal() && terminal_columns().is_some(),
            tz: local_zone(),
            now_ms: Timestamp::now().as_millisecond().max(0) as u64,
            shown: Default::default(),
            plan: Default::default(),
            fields,
            sort,
        })
    }

    /// Fixed settings, for tests: no colour, no fitting, UTC, this "now".
    #[cfg(test)]
    fn plain<R: Row>(names: &[&str], now_ms: u64) -> Layout {
        let mut l = Layout::new::<R>(&TableArgs::default(), names).unwrap();
        l.colour = false;
        l.fit = false;
        l.tz = TimeZone::UTC;
        l.now_ms = now_ms;
        l
    }

    fn head(&self) -> Vec<String> {
        self.cols
            .iter()
            .map(|c| c.title.map_or_else(|| c.name.to_uppercase(), String::from))
            .collect()
    }

    /// Appends a row's cells, as shown, to `grid` (see [`cells`]).
    fn fill<R: Row>(&self, grid: &mut Grid, row: &R) {
        let cols = cells::Columns {
            names: &self.keys,
            kinds: &self.kinds,
            times: self,
        };
        match &self.fields {
            Some(f) => cells::push_fields(grid, row, &cols, f, R::field),
            None => cells::push_row(grid, row, &cols, &mut self.plan.borrow_mut()),
        }
    }

    /// One row's cells as shown.
    #[cfg(test)]
    fn cells<R: Row>(&self, row: &R) -> Vec<String> {
        let mut g = Grid::new(self.cols.len());
        self.fill(&mut g, row);
        g.row(0).map(String::from).collect()
    }

    /// Local time, as short as still clear (the time alone today, the day this year,
    /// the date before), with its age: `14:03 (3m ago)`.
    fn local(&self, ms: u64) -> String {
        let (Ok(t), Ok(now)) = (
            Timestamp::from_millisecond(ms as i64),
            Timestamp::from_millisecond(self.now_ms as i64),
        ) else {
            return ms.to_string();
        };
        let (z, today) = (t.to_zoned(self.tz.clone()), now.to_zoned(self.tz.clone()));
        let shown = if z.date() == today.date() {
            z.strftime("%H:%M").to_string()
        } else if z.year() == today.year() {
            z.strftime("%b %d %H:%M").to_string()
        } else {
            z.strftime("%Y-%m-%d").to_string()
        };
        format!("{shown} ({})", age(self.now_ms as i64 - ms as i64))
    }

    /// The layout comfy-table gives with no borders (a gap of [`GAP`] spaces after
    /// every cell), for tables too long for it to lay out quickly. Columns are at least
    /// `widths` wide (the pages before), which grow to fit these rows; the header only
    /// if asked. Written line by line to `out`, each line ending in a newline: a
    /// listing of 10,000 rows is held once (its cells), not twice.
    fn render_plain(&self, grid: &Grid, widths: &mut Vec<usize>, header: bool, out: &mut impl Write) -> std::io::Result<()> {
        let head = self.head();
        if widths.is_empty() {
            *widths = if self.header {
                head.iter().map(|h| width(h)).collect()
            } else {
                vec![0; head.len()]
            };
        }
        for (w, g) in widths.iter_mut().zip(grid.widths()) {
            *w = (*w).max(g);
        }
        let mut line = Vec::with_capacity(widths.iter().map(|w| w + GAP).sum::<usize>() + 1);
        if header && self.header {
            put_line(&mut line, head.iter().map(String::as_str), widths);
            out.write_all(&line)?;
        }
        for r in 0..grid.rows() {
            line.clear();
            grid.put_line(r, widths, GAP, &mut line);
            out.write_all(&line)?;
        }
        Ok(())
    }

    /// A whole table, ending in a newline: comfy-table, fitted to the terminal's width
    /// when there is one; the plain layout for long tables.
    fn render(&self, grid: &Grid, out: &mut impl Write) -> std::io::Result<()> {
        if grid.rows() > PLAIN_ROWS && !self.colour {
            return self.render_plain(grid, &mut Vec::new(), true, out);
        }
        let mut t = Table::new();
        t.load_style(presets::NOTHING);
        if self.fit {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        if self.header {
            t.set_header(self.head());
        }
        let state = self.cols.iter().position(|c| c.name == "state");
        for r in 0..grid.rows() {
            t.add_row(grid.row(r).enumerate().map(|(i, text)| {
                let mut cell = Cell::new(text);
                if self.colour
                    && Some(i) == state
                    && let Some(c) = state_colour(text)
                {
                    cell = cell.fg(c);
                }
                cell
            }));
        }
        // After the rows: without a header, the columns exist only once there are rows
        // (set before, a table without header had comfy-table's default padding).
        for (c, column) in self.cols.iter().zip(t.column_iter_mut()) {
            column.set_padding((0, GAP as u16));
            if self.fit && !c.wrap {
                column.set_constraint(ColumnConstraint::ContentWidth);
            }
        }
        writeln!(out, "{t}")
    }
}

impl cells::Times for Layout {
    /// Times already shown are looked up, not formatted again (see `Layout::shown`).
    fn time(&self, t: u64, out: &mut String) {
        let key = (t / 1000, (self.now_ms as i64 - t as i64) / 1000);
        out.push_str(self.shown.borrow_mut().entry(key).or_insert_with(|| self.local(t)));
    }
}

use cells::width;

/// Appends one line of a plain table: each cell padded to its column's width and
/// [`GAP`] more, then a newline.
fn put_line<'a>(out: &mut Vec<u8>, cells: impl Iterator<Item = &'a str>, widths: &[usize]) {
    for (c, w) in cells.zip(widths) {
        out.extend_from_slice(c.as_bytes());
        cells::pad(out, w - width(c) + GAP);
    }
    out.push(b'\n');
}

/// `42s`, `3m`, `5h`, `2d` `ago` (or `in ...` for a time ahead of the clock).
fn age(ms: i64) -> String {
    let secs = ms / 1000;
    let unit = match secs.unsigned_abs() {
        0..60 => Unit::Second,
        60..3600 => Unit::Minute,
        3600..86_400 => Unit::Hour,
        _ => Unit::Day,
    };
    let span = Span::new()
        .try_seconds(secs.abs())
        .and_then(|s| s.round(SpanRound::new().largest(unit).smallest(unit).days_are_24_hours()));
    match span {
        Ok(s) if secs < 0 => format!("in {s:#}"),
        Ok(s) => format!("{s:#} ago"),
        Err(_) => String::new(),
    }
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

/// Prints one object (what a state-changing command leaves behind) for `--json`.
pub fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Prints a listing that arrives in pages. Up to `HOLD_ROWS` rows print exactly as a
/// whole listing does (a table's cells are held until then); longer ones stream as
/// they arrive: JSON as one array written row by row, tables in the plain layout, whose
/// columns widen if a later page has wider cells.
pub struct Paged<W: Write> {
    json: bool,
    layout: Layout,
    out: W,
    /// Pages taken so far: the first decides the JSON opening.
    pages: usize,
    /// Rows written so far: the table header, JSON commas and the one-table form depend
    /// on it. (Table rows held in `grid` are not written yet.)
    rows: usize,
    /// The plain table's column widths so far.
    widths: Vec<usize>,
    /// The cells of the table rows not written yet; its buffers are kept after.
    grid: Grid,
    /// What a table with no rows says (with a header; without one it says nothing, so
    /// that `| wc -l` counts rows).
    empty: String,
    /// With `--sort`: each row's sort values, in arrival order (its table cells are in
    /// `grid`, its JSON in `json_rows`), held until the listing is whole.
    sort_keys: Vec<Vec<serde_json::Value>>,
    json_rows: Vec<Vec<u8>>,
}

/// Table rows held before any is written: a listing up to this long prints as one
/// table, its columns as wide as its widest cells, even when it came in many pages.
const HOLD_ROWS: usize = 20_000;

impl<W: Write> Paged<W> {
    pub fn to(out: W, layout: Layout, json: bool) -> Paged<W> {
        Paged {
            json,
            out,
            pages: 0,
            rows: 0,
            widths: Vec::new(),
            grid: Grid::new(layout.cols.len()),
            layout,
            empty: "(none)".into(),
            sort_keys: Vec::new(),
            json_rows: Vec::new(),
        }
    }

    /// What an empty table says instead of "(none)": where else to look, say.
    pub fn when_empty(mut self, text: impl Into<String>) -> Self {
        self.empty = text.into();
        self
    }

    /// Writes one page; `last` when no more follow. Rows may be made as they are
    /// taken (an iterator), so a page's rows need not be held together.
    pub fn page<R: Row>(&mut self, rows: impl IntoIterator<Item = R>, last: bool) -> anyhow::Result<()> {
        if !self.layout.sort.is_empty() {
            return self.sorted_page(rows, last);
        }
        if self.json {
            if self.pages == 0 {
                self.out.write_all(b"[")?;
            }
            for r in rows {
                if self.rows > 0 {
                    self.out.write_all(b",")?;
                }
                serde_json::to_writer(&mut self.out, &r)?;
                self.rows += 1;
            }
            if last {
                self.out.write_all(b"]\n")?;
            }
        } else {
            let before = self.grid.rows();
            for r in rows {
                self.layout.fill(&mut self.grid, &r);
            }
            let held = self.grid.rows();
            if before == 0 && !last && held > 0 {
                // More pages follow: room for as many rows as are held at most.
                self.grid.reserve_rows(HOLD_ROWS);
            }
            if self.rows == 0 && last {
                if held == 0 {
                    if self.layout.header {
                        self.out.write_all(self.empty.as_bytes())?;
                        self.out.write_all(b"\n")?;
                    }
                } else {
                    self.layout.render(&self.grid, &mut self.out)?;
                }
            } else if held > 0 && (last || held >= HOLD_ROWS) {
                let header = self.rows == 0;
                self.layout.render_plain(&self.grid, &mut self.widths, header, &mut self.out)?;
            }
            if last || held >= HOLD_ROWS {
                self.grid.clear();
                self.rows += held;
            }
        }
        self.pages += 1;
        if last {
            self.out.flush()?;
        }
        Ok(())
    }

    /// [`Paged::page`] with `--sort`: rows are held (a sorted listing cannot start before
    /// its last row is known), then written in order as one listing.
    fn sorted_page<R: Row>(&mut self, rows: impl IntoIterator<Item = R>, last: bool) -> anyhow::Result<()> {
        for r in rows {
            let v = serde_json::to_value(&r)?;
            self.sort_keys.push(
                self.layout
                    .sort
                    .iter()
                    .map(|(k, _)| v.get(k).cloned().unwrap_or_default())
                    .collect(),
            );
            if self.json {
                // The row itself, not `v`: a `Value`'s keys come out in another order.
                self.json_rows.push(serde_json::to_vec(&r)?);
            } else {
                self.layout.fill(&mut self.grid, &r);
            }
        }
        self.pages += 1;
        if !last {
            return Ok(());
        }
        let mut order: Vec<usize> = (0..self.sort_keys.len()).collect();
        let dirs: Vec<bool> = self.layout.sort.iter().map(|(_, d)| *d).collect();
        // Stable: rows equal in every sort column keep the agent's order.
        order.sort_by(|&a, &b| {
            let (ka, kb) = (&self.sort_keys[a], &self.sort_keys[b]);
            dirs.iter()
                .enumerate()
                .map(|(i, &d)| cmp_values(ka.get(i), kb.get(i), d))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        if self.json {
            self.out.write_all(b"[")?;
            for (n, &i) in order.iter().enumerate() {
                if n > 0 {
                    self.out.write_all(b",")?;
                }
                self.out.write_all(&self.json_rows[i])?;
            }
            self.out.write_all(b"]\n")?;
        } else if order.is_empty() {
            if self.layout.header {
                self.out.write_all(self.empty.as_bytes())?;
                self.out.write_all(b"\n")?;
            }
        } else {
            let grid = self.grid.permuted(&order);
            self.layout.render(&grid, &mut self.out)?;
        }
        self.rows = order.len();
        self.out.flush()?;
        Ok(())
    }

    /// Writes text as it is (profile listings); `last` when no more follows.
    pub fn raw(&mut self, text: &str, last: bool) -> std::io::Result<()> {
        self.pages += 1;
        self.out.write_all(text.as_bytes())?;
        if last { self.out.flush() } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Times in JSON read as they did when `strftime` wrote them, for instants across
    /// jiff's whole range, and the number itself past it.
    #[test]
    fn rfc3339_reads_as_before() {
        let old = |ms: u64| Timestamp::from_millisecond(ms as i64).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        let mut ms = 0u64;
        while let Ok(want) = old(ms) {
            assert_eq!(rfc3339(ms), want, "{ms}");
            assert_eq!(serde_json::to_string(&Time(ms)).unwrap(), format!("\"{want}\""));
            ms = ms * 3 + 7;
        }
        for ms in [
            1_795_379_471_000,
            1_795_379_471_001,
            1_795_379_471_010,
            1_795_379_471_999,
            253_402_207_200_000,
        ] {
            assert_eq!(rfc3339(ms), old(ms).unwrap(), "{ms}");
        }
        let past = 253_402_207_200_001;
        assert!(old(past).is_err());
        assert_eq!(rfc3339(past), past.to_string());
    }

    /// Every row type with [`Row::FIELDS`] names exactly its serialized fields, and
    /// writes each (in every kind of column) as the cell `serialize` gives.
    fn fields_match_serialize<R: Row>(rows: &[R]) {
        let json = serde_json::to_value(&rows[0]).unwrap();
        let mut serialized: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut named = R::FIELDS.to_vec();
        serialized.sort_unstable();
        named.sort_unstable();
        assert_eq!(named, serialized);
        for kind in [Kind::Text, Kind::Time, Kind::List] {
            let kinds = vec![kind; R::FIELDS.len()];
            let mut l = Layout::plain::<R>(&[], NOW);
            l.keys = R::FIELDS.iter().map(|f| f.to_string()).collect();
            l.kinds = kinds;
            l.cols = R::FIELDS.iter().map(|_| col("x")).collect();
            l.fields = Some((0..R::FIELDS.len()).collect());
            let mut direct = Grid::new(R::FIELDS.len());
            let mut picked = Grid::new(R::FIELDS.len());
            for r in rows {
                l.fill(&mut direct, r);
                let cols = cells::Columns {
                    names: &l.keys,
                    kinds: &l.kinds,
                    times: &l,
                };
                cells::push_row(&mut picked, r, &cols, &mut cells::Plan::default());
            }
            for r in 0..rows.len() {
                assert_eq!(
                    direct.row(r).collect::<Vec<_>>(),
                    picked.row(r).collect::<Vec<_>>(),
                    "{kind:?}, row {r}"
                );
            }
        }
    }

    #[test]
    fn fields_write_what_serialize_gives() {
        use crate::rows::{SessionRow, TaskRow, Users};
        use soam_proto::msg::{SessionInfo, SessionState, TaskInfo, TaskState};
        let full = SessionInfo {
            app: "app \u{1b}x".into(),
            id: 7,
            name: Some("n\u{e9}".into()),
            tag: Some(String::new()),
            session_type: "t".into(),
            state: SessionState::Suspended,
            priority: 3,
            recoverable: true,
            direct: false,
            pending: 1,
            running: 2,
            done: 3,
            error: 4,
            canceled: 5,
            undelivered: 6,
            created_ms: NOW - 5_000,
            ended_ms: Some(NOW - 1_000),
            holder: Some("pid 9".into()),
            orphaned: true,
            owner_uid: 0,
            reason: Some("why".into()),
        };
        let bare = SessionInfo {
            name: None,
            tag: None,
            ended_ms: None,
            holder: None,
            reason: None,
            owner_uid: u32::MAX,
            ..full.clone()
        };
        let mut users = Users::default();
        users.load([0, u32::MAX]);
        fields_match_serialize(&[SessionRow::new(full.view(), &users), SessionRow::new(bare.view(), &users)]);
        let task = TaskInfo {
            task: 3,
            state: TaskState::Error,
            attempts: 2,
            submitted_ms: NOW - 9_000,
            started_ms: Some(NOW - 8_000),
            ended_ms: Some(NOW - 6_500),
            input_bytes: 10,
            output_bytes: Some(4),
            error: Some("bad\nsecond line".into()),
            delivered: true,
            node: Some("n1".into()),
        };
        let pending = TaskInfo {
            started_ms: None,
            ended_ms: None,
            output_bytes: None,
            error: None,
            node: None,
            ..task.clone()
        };
        fields_match_serialize(&[TaskRow::new(&task, true), TaskRow::new(&pending, false)]);
    }

    #[derive(Serialize)]
    struct T {
        task: u64,
        state: &'static str,
        holder: Option<String>,
        nodes: Vec<String>,
        at: Time,
        at_ms: u64,
    }
    impl Row for T {
        const COLUMNS: &'static [Col] = &[col("task"), col("state"), text_col("holder"), list_col("nodes"), time_col("at")];
    }

    const NOW: u64 = 1_795_379_471_000; // 2026-11-22T20:31:11Z

    fn t(task: u64, holder: Option<&str>) -> T {
        T {
            task,
            state: if task.is_multiple_of(2) { "done" } else { "pending" },
            holder: holder.map(String::from),
            nodes: vec!["n1".into(), String::new()],
            at: Time(NOW - 180_000),
            at_ms: NOW - 180_000,
        }
    }

    #[test]
    fn cells_come_from_the_serialised_row() {
        let l = Layout::plain::<T>(&["task", "state", "holder", "nodes", "at"], NOW);
        assert_eq!(
            l.cells(&t(3, Some("pid 7 \u{1b}[31m"))),
            ["3", "pending", "pid 7 \\u{1b}[31m", "n1,\"\"", "20:28 (3m ago)"]
        );
        let j: serde_json::Value = serde_json::to_value(t(3, None)).unwrap();
        assert_eq!(j["at"], "2026-11-22T20:28:11.000Z");
        assert_eq!(j["nodes"], serde_json::json!(["n1", ""]));
        assert_eq!(l.local(NOW - 2 * 86_400_000), "Nov 20 20:31 (2d ago)");
        assert_eq!(l.local(NOW - 400 * 86_400_000), "2025-10-18 (400d ago)");
        assert_eq!(l.local(NOW + 5_000), "20:31 (in 5s)");
        assert_eq!(age(5_399_000), "1h ago");
        assert_eq!(age(7_199_000), "2h ago");
    }

    #[test]
    fn unknown_columns_are_refused_with_the_valid_ones() {
        let args = TableArgs {
            columns: vec!["task".into(), "stat".into()],
            ..TableArgs::default()
        };
        let e = Layout::new::<T>(&args, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown column 'stat'; did you mean 'state'? (valid: task, state, holder, nodes, at, or all)"
        );
        assert_eq!(crate::common::exit::code(&e), crate::common::exit::USAGE);
        // Any name a user sees: the JSON key or the header, any case; a time also as `_ms`.
        let args = TableArgs {
            columns: vec!["TASK".into(), "State".into(), "at_MS".into()],
            ..TableArgs::default()
        };
        assert_eq!(Layout::new::<T>(&args, &[]).unwrap().keys, ["task", "state", "at_ms"]);
        let args = TableArgs {
            columns: vec!["é_ms".into(), "xé".into()],
            ..TableArgs::default()
        };
        assert!(Layout::new::<T>(&args, &[]).is_err(), "refused, never a panic");
    }

    #[test]
    fn plain_layout_matches_comfy_table() {
        let l = Layout::plain::<T>(&["task", "state", "holder"], NOW);
        // Non-ASCII text is padded by characters, as comfy-table does.
        let mut grid = Grid::new(3);
        for r in [
            t(12, None),
            t(3, Some("pid 7 \"x\"")),
            t(1, Some("état")),
            t(5, Some("ascii after")),
            t(8, Some("café")),
        ] {
            l.fill(&mut grid, &r);
        }
        let mut table = Table::new();
        table.load_style(presets::NOTHING);
        table.set_header(l.head());
        for r in 0..grid.rows() {
            table.add_row(grid.row(r));
        }
        for c in table.column_iter_mut() {
            c.set_padding((0, GAP as u16));
        }
        let text = |f: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
            let mut out = Vec::new();
            f(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let want = format!("{table}\n");
        assert_eq!(text(&|o| l.render_plain(&grid, &mut Vec::new(), true, o)), want);
        assert_eq!(text(&|o| l.render(&grid, o)), want);
    }

    /// Pages in, as the agent sends them (empty ones too: a filter's bounded scan may
    /// find nothing in a stretch): out comes the same listing as one page would give.
    fn paged(pages: &[std::ops::Range<u64>], json: bool, header: bool) -> String {
        let mut l = Layout::plain::<T>(&["task", "state"], NOW);
        l.header = header;
        let mut p = Paged::to(Vec::new(), l, json);
        for (i, r) in pages.iter().enumerate() {
            let rows: Vec<T> = r.clone().map(|i| t(i, None)).collect();
            p.page(&rows, i + 1 == pages.len()).unwrap();
        }
        String::from_utf8(p.out).unwrap()
    }

    #[test]
    fn pages_print_as_one_listing() {
        let pages = [0..0, 1..4, 4..4, 4..1200, 1200..1201, 1201..1201];
        let json: serde_json::Value = serde_json::from_str(&paged(&pages, true, true)).unwrap();
        let whole: Vec<T> = (1..1201).map(|i| t(i, None)).collect();
        assert_eq!(json, serde_json::to_value(&whole).unwrap());
        // Widths settle in the first page with rows here, so the text is the whole's.
        assert_eq!(
            paged(&pages[..5], false, true),
            paged(std::slice::from_ref(&(1..1201)), false, true)
        );
        assert_eq!(paged(&[0..0, 0..0], false, true), "(none)\n");
        assert_eq!(paged(&[0..0, 0..0], false, false), "", "no header: nothing but rows");
        assert_eq!(paged(&[0..0, 0..0], true, true).trim(), "[]");
        let bare = paged(&[1..3, 3..5], false, false);
        assert_eq!(bare.lines().count(), 4);
        assert!(bare.starts_with("1 "), "{bare}");
    }
}
