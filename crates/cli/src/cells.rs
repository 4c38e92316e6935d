//! A table's cells written straight from a row's `Serialize` into one text buffer per
//! page ([`Grid`]): only the fields shown, each as the text its column shows, so a table
//! is drawn from the very data `--json` prints with no allocation per row or per cell.
//! (Building a JSON object per row, and later a value and a string per cell, were most
//! of `soamview session`'s time over 10,000 sessions.)

use serde::Serialize;
use serde::ser::{self, Impossible};
use std::fmt::Write as _;

/// How a column's value becomes a table cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Shown as it is (strings escaped, null empty, booleans yes/no).
    Text,
    /// A time (`output::Time`): the cell is local time with age, from the `NAME_ms` field beside it.
    Time,
    /// An array, joined with commas (an empty string shows as `""`).
    List,
}

/// The cells of a page of rows, `cols` to a row, their text in one buffer.
#[derive(Debug, Default, Clone)]
pub struct Grid {
    text: String,
    /// Each cell's place in `text`, row after row. (Not its width as well: a third
    /// smaller, so fewer page faults for a large `soamview session`; a cell's width is
    /// its length but on `wide_rows`.)
    spans: Vec<Span>,
    cols: usize,
    /// Rows with a cell that is not ASCII, in order (usually none): only their cells
    /// count characters for widths, and only their lines to pad. Found once a row is
    /// written, with one test over its text, not one per cell.
    wide_rows: Vec<usize>,
}

impl Grid {
    pub fn new(cols: usize) -> Grid {
        Grid { cols, ..Grid::default() }
    }

    /// Empties it, keeping what it allocated for the next page.
    pub fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.wide_rows.clear();
    }

    /// Makes room for `rows` rows in all, their text as long on average as the rows
    /// so far, so that a long listing's cells are not copied each time their buffers
    /// double: the room is only address space until rows are written into it.
    pub fn reserve_rows(&mut self, rows: usize) {
        let have = self.rows().max(1);
        let per_row = self.text.len().div_ceil(have).max(1);
        self.spans.reserve((rows * self.cols).saturating_sub(self.spans.len()));
        self.text.reserve((rows * per_row).saturating_sub(self.text.len()));
    }

    /// Each column's widest cell, in characters: what a plain table pads to. Worked out
    /// when a table is printed, in one pass over the spans, rather than kept up to date
    /// as each cell is written (which was an eighth of `soamview session`'s work).
    pub fn widths(&self) -> Vec<usize> {
        let mut widths = vec![0; self.cols];
        let mut wide = self.wide_rows.iter().peekable();
        for (r, cells) in self.spans.chunks_exact(self.cols.max(1)).enumerate() {
            if wide.next_if_eq(&&r).is_some() {
                for (w, sp) in widths.iter_mut().zip(cells) {
                    *w = (*w).max(width(&self.text[sp.start as usize..sp.end as usize]));
                }
            } else {
                for (w, sp) in widths.iter_mut().zip(cells) {
                    *w = (*w).max((sp.end - sp.start) as usize);
                }
            }
        }
        widths
    }

    pub fn rows(&self) -> usize {
        self.spans.len().checked_div(self.cols).unwrap_or(0)
    }

    pub fn cell(&self, row: usize, col: usize) -> &str {
        let sp = self.spans[row * self.cols + col];
        &self.text[sp.start as usize..sp.end as usize]
    }

    /// Appends row `row` as a line of a plain table: each cell padded with spaces to
    /// its column's width in `widths` (at least its own) and `gap` more, then a newline.
    pub fn put_line(&self, row: usize, widths: &[usize], gap: usize, out: &mut Vec<u8>) {
        let text = self.text.as_bytes();
        let cells = &self.spans[row * self.cols..(row + 1) * self.cols];
        if self.wide_rows.binary_search(&row).is_err() {
            // Every cell as wide as its bytes (ASCII, the usual case): the line is as
            // long as the widths say, so it is laid out as spaces with each cell
            // copied to its column's place.
            let start = out.len();
            let len: usize = widths.iter().map(|w| w + gap).sum();
            out.resize(start + len, b' ');
            let mut at = start;
            for (sp, w) in cells.iter().zip(widths) {
                let cell = &text[sp.start as usize..sp.end as usize];
                out[at..at + cell.len()].copy_from_slice(cell);
                at += w + gap;
            }
        } else {
            for (sp, w) in cells.iter().zip(widths) {
                let cell = &self.text[sp.start as usize..sp.end as usize];
                out.extend_from_slice(cell.as_bytes());
                pad(out, w - width(cell) + gap);
            }
        }
        out.push(b'\n');
    }

    pub fn row(&self, row: usize) -> impl Iterator<Item = &str> {
        (0..self.cols).map(move |c| self.cell(row, c))
    }

    /// The same rows in the order `order` gives (row numbers of this grid): a sorted
    /// listing is written in arrival order, then put in order once it is whole.
    pub fn permuted(&self, order: &[usize]) -> Grid {
        let mut g = Grid::new(self.cols);
        g.text.reserve(self.text.len());
        g.spans.reserve(self.spans.len());
        for &r in order {
            let start = g.text.len();
            for c in 0..self.cols {
                let at = g.text.len();
                g.text.push_str(self.cell(r, c));
                g.spans.push(Span {
                    start: at as u32,
                    end: g.text.len() as u32,
                });
            }
            g.end_row(start);
        }
        g
    }
}

/// Where a cell's text lies in its grid's buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

/// Appends `n` spaces.
pub fn pad(out: &mut Vec<u8>, mut n: usize) {
    const SPACES: &[u8; 64] = &[b' '; 64];
    while n > 0 {
        let k = n.min(SPACES.len());
        out.extend_from_slice(&SPACES[..k]);
        n -= k;
    }
}

/// Characters in a cell (what a plain table pads to); most cells are ASCII, whose
/// length says it without walking them.
pub fn width(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.chars().count() }
}

/// How a time cell shows its instant (milliseconds since the epoch).
pub trait Times {
    fn time(&self, ms: u64, out: &mut String);
}

/// Which of the wanted names each field a row serializes goes to, by the field's place
/// in the row: rows of one type serialize the same fields in the same order, so a long
/// listing compares field names once, not once per row.
#[derive(Debug, Default, Clone)]
pub struct Plan(Vec<(&'static str, Vec<usize>)>);

/// What the columns of a grid are: the row field each shows (by its serde name) and how.
pub struct Columns<'a, S> {
    pub names: &'a [S],
    pub kinds: &'a [Kind],
    pub times: &'a dyn Times,
}

/// Appends `row` (a struct) to `grid`: the fields `cols.names`, in that order, each as
/// its kind shows it; an empty cell where the row has no such field, or a value a cell
/// cannot show (a map, say). `plan` is kept across rows of one type and one set of names.
pub fn push_row<R: Serialize, S: AsRef<str>>(grid: &mut Grid, row: &R, cols: &Columns<'_, S>, plan: &mut Plan) {
    let first = grid.spans.len();
    let at = grid.text.len() as u32;
    grid.spans
        .extend(std::iter::repeat_n(Span { start: at, end: at }, cols.names.len()));
    let mut p = Picker {
        cols,
        plan,
        field: 0,
        grid,
        first,
    };
    // A row that is not a struct has no such fields: all empty.
    let _ = row.serialize(&mut p);
    grid.end_row(at as usize);
}

/// One cell being written: what a row's `output::Row::field` writes the
/// value of one of its fields to, through the very writer `push_row` uses, so a cell
/// reads the same whichever way it was made.
pub struct Cell<'a> {
    out: &'a mut String,
    kind: Kind,
    times: &'a dyn Times,
}

impl Cell<'_> {
    pub fn put<T: ?Sized + Serialize>(self, v: &T) {
        let start = self.out.len();
        let w = CellWriter {
            out: &mut *self.out,
            kind: self.kind,
            item: false,
            times: self.times,
        };
        // A value a cell cannot hold shows as empty, as in `push_row`.
        if v.serialize(w).is_err() {
            self.out.truncate(start);
        }
    }
}

/// Appends `row` to `grid` as [`push_row`] does, for a row type that writes its fields
/// itself: `fields[i]` is column `i`'s field number as `field` counts them. Only the
/// fields shown are visited (serializing a whole row visits every field, and most are
/// not shown: a default session table shows 10 of 24).
pub fn push_fields<R: ?Sized, S>(grid: &mut Grid, row: &R, cols: &Columns<'_, S>, fields: &[usize], field: impl Fn(&R, usize, Cell<'_>)) {
    let first = grid.spans.len();
    let at = grid.text.len() as u32;
    grid.spans.extend(std::iter::repeat_n(Span { start: at, end: at }, fields.len()));
    for (i, &f) in fields.iter().enumerate() {
        let start = grid.text.len();
        let cell = Cell {
            out: &mut grid.text,
            kind: cols.kinds[i],
            times: cols.times,
        };
        field(row, f, cell);
        grid.end_cell(first + i, start);
    }
    grid.end_row(at as usize);
}

#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Error {}
impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

fn unsupported<T>(what: &str) -> Result<T, Error> {
    Err(Error(format!("{what} is not a table cell")))
}

struct Picker<'a, 'c, S> {
    cols: &'a Columns<'c, S>,
    plan: &'a mut Plan,
    /// How many fields of this row came before.
    field: usize,
    grid: &'a mut Grid,
    /// This row's first span in the grid.
    first: usize,
}

impl<S: AsRef<str>> ser::SerializeStruct for &mut Picker<'_, '_, S> {
    type Ok = ();
    type Error = Error;
    // Inlined into each row's derived `serialize`, so that a field no column shows
    // (most of them, in a default table) costs a comparison, not a call: out of line,
    // each field's call saved and restored every register of a body that had its
    // value's cell writing inlined, for every field not shown.
    #[inline(always)]
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        let at = self.field;
        self.field += 1;
        if let Some((k, slots)) = self.plan.0.get(at)
            && std::ptr::eq(*k, key)
            && slots.is_empty()
        {
            return Ok(());
        }
        self.shown_field(at, key, value);
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<S: AsRef<str>> Picker<'_, '_, S> {
    /// The cells of field number `at` (`key`), if any column shows it.
    #[inline(never)]
    fn shown_field<T: ?Sized + Serialize>(&mut self, at: usize, key: &'static str, value: &T) {
        // The same field name (the same static string) as the row before, at this place:
        // the same columns. Otherwise, work them out and remember.
        if self.plan.0.get(at).is_none_or(|(k, _)| !std::ptr::eq(*k, key)) {
            let slots = self
                .cols
                .names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.as_ref() == key)
                .map(|(i, _)| i)
                .collect();
            self.plan.0.truncate(at);
            self.plan.0.push((key, slots));
        }
        for &i in &self.plan.0[at].1 {
            let text = &mut self.grid.text;
            let start = text.len();
            let w = CellWriter {
                out: text,
                kind: self.cols.kinds[i],
                item: false,
                times: self.cols.times,
            };
            // A value a cell cannot hold shows as empty rather than failing the row.
            if value.serialize(w).is_err() {
                text.truncate(start);
            }
            self.grid.end_cell(self.first + i, start);
        }
    }
}

impl Grid {
    /// Records the cell written into `text` from `start` as span `span`.
    #[inline]
    fn end_cell(&mut self, span: usize, start: usize) {
        self.spans[span] = Span {
            start: start as u32,
            end: self.text.len() as u32,
        };
    }

    /// The last row is written, its text from `start` on: noted if it is not ASCII.
    fn end_row(&mut self, start: usize) {
        if !self.text.as_bytes()[start..].is_ascii() {
            self.wide_rows.push(self.rows() - 1);
        }
    }
}

/// Only `serialize_struct` (and what forwards to it) makes sense for a row.
macro_rules! not_a_struct {
    ($($f:ident($($t:ty),*)),* $(,)?) => {
        $(fn $f(self, $(_: $t),*) -> Result<Self::Ok, Error> { unsupported("a row that is not a struct") })*
    };
}

impl<S: AsRef<str>> ser::Serializer for &mut Picker<'_, '_, S> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    not_a_struct!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );
    fn serialize_newtype_variant<T: ?Sized + Serialize>(self, _: &'static str, _: u32, _: &'static str, _: &T) -> Result<(), Error> {
        unsupported("an enum row")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        unsupported("a list row")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        unsupported("a tuple row")
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        unsupported("a tuple row")
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeTupleVariant, Error> {
        unsupported("an enum row")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        unsupported("a map row")
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeStructVariant, Error> {
        unsupported("an enum row")
    }
}

/// Writes one field's value as its cell shows it: text escaped (names and values may
/// come from other users and profiles, so control and bidi characters are escaped),
/// nothing for a null, booleans yes/no, numbers as JSON writes them, a time column's
/// milliseconds as [`Times`] says, a list's items joined with commas.
struct CellWriter<'a> {
    out: &'a mut String,
    kind: Kind,
    /// An item of a list column's list: an empty string shows as `""`, so that a list
    /// of one empty name is told from an empty list.
    item: bool,
    times: &'a dyn Times,
}

impl CellWriter<'_> {
    /// Numbers and text show in every column but a time column's, which shows only
    /// milliseconds.
    fn shows(&self) -> bool {
        self.kind != Kind::Time
    }
}

impl<'a> ser::Serializer for CellWriter<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ListWriter<'a>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        if self.shows() {
            self.out.push_str(if v { "yes" } else { "no" });
        }
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        if self.shows() {
            self.out.push_str(itoa::Buffer::new().format(v));
        }
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        if self.kind == Kind::Time {
            self.times.time(v, self.out);
        } else {
            self.out.push_str(itoa::Buffer::new().format(v));
        }
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        // As JSON writes it (2.0, not 2), so table and JSON agree.
        if self.shows()
            && let Some(n) = serde_json::Number::from_f64(v)
        {
            let _ = write!(self.out, "{n}");
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        if self.shows() {
            if v.is_empty() && self.item {
                self.out.push_str("\"\"");
            } else {
                self.out.push_str(&soam_proto::text::escape(v));
            }
        }
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        unsupported("bytes")
    }
    fn serialize_none(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Error> {
        // The variant's serialised name (after serde's renames), as JSON shows it.
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(self, _: &'static str, _: u32, _: &'static str, _: &T) -> Result<(), Error> {
        unsupported("an enum with data")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<ListWriter<'a>, Error> {
        Ok(ListWriter {
            // Items of a list column's own list; a list in a list joins plainly.
            item: self.kind == Kind::List && !self.item,
            w: self,
            first: true,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        unsupported("a tuple")
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        unsupported("a tuple")
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeTupleVariant, Error> {
        unsupported("an enum with data")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        unsupported("a map")
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        unsupported("a nested struct")
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeStructVariant, Error> {
        unsupported("an enum with data")
    }
}

/// A list's items, joined with commas.
struct ListWriter<'a> {
    w: CellWriter<'a>,
    item: bool,
    first: bool,
}

impl ser::SerializeSeq for ListWriter<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Error> {
        if !self.w.shows() {
            return Ok(());
        }
        if !self.first {
            self.w.out.push(',');
        }
        self.first = false;
        v.serialize(CellWriter {
            out: self.w.out,
            kind: self.w.kind,
            item: self.item,
            times: self.w.times,
        })
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "lowercase")]
    enum State {
        Open,
    }

    #[derive(Serialize)]
    struct Row {
        id: u64,
        name: Option<String>,
        tag: Option<String>,
        state: State,
        #[serde(rename = "type")]
        kind: &'static str,
        types: Vec<String>,
        ok: bool,
        delta: i32,
        run_s: f64,
        at_ms: Option<u64>,
    }

    /// Times as `t<ms>`.
    struct T;
    impl Times for T {
        fn time(&self, ms: u64, out: &mut String) {
            let _ = write!(out, "t{ms}");
        }
    }

    fn pick<R: Serialize>(row: &R, names: &[&str], kinds: &[Kind], plan: &mut Plan) -> Vec<String> {
        let mut g = Grid::new(names.len());
        let cols = Columns { names, kinds, times: &T };
        push_row(&mut g, row, &cols, plan);
        assert_eq!(g.rows(), 1);
        g.row(0).map(String::from).collect()
    }

    fn row(id: u64) -> Row {
        Row {
            id,
            name: Some("n\u{1b}".into()),
            tag: None,
            state: State::Open,
            kind: "Batch",
            types: vec!["".into(), "Keep".into()],
            ok: id.is_multiple_of(2),
            delta: -2,
            run_s: 1.5,
            at_ms: Some(5),
        }
    }

    #[test]
    fn writes_the_named_fields_as_serde_names_them_and_their_kind_shows_them() {
        use Kind::{List, Text, Time};
        let names = [
            "state", "id", "type", "tag", "missing", "types", "types", "ok", "delta", "run_s", "name", "at_ms", "id",
        ];
        let kinds = [Text, Text, Text, Text, Text, List, Text, Text, Text, Text, Text, Time, Time];
        assert_eq!(
            pick(&row(7), &names, &kinds, &mut Plan::default()),
            [
                "open",
                "7",
                "Batch",
                "",
                "",
                "\"\",Keep",
                ",Keep",
                "no",
                "-2",
                "1.5",
                "n\\u{1b}",
                "t5",
                "t7"
            ]
        );
        // Not a struct: nothing to pick.
        assert_eq!(pick(&5u32, &["id"], &[Text], &mut Plan::default()), [""]);
        // A value no cell shows (a map) is an empty cell; the row's other cells stay.
        #[derive(Serialize)]
        struct M {
            m: std::collections::BTreeMap<u8, u8>,
            id: u8,
        }
        let m = M { m: [(1, 2)].into(), id: 3 };
        assert_eq!(pick(&m, &["m", "id"], &[Text, Text], &mut Plan::default()), ["", "3"]);
    }

    #[derive(Serialize)]
    struct Other {
        ok: bool,
        id: u64,
    }

    #[test]
    fn a_plan_kept_across_rows_follows_what_each_row_serializes() {
        let names = ["id", "ok", "id"];
        let kinds = [Kind::Text; 3];
        let mut plan = Plan::default();
        for id in 1..4 {
            // A name asked for twice fills both columns.
            let ok = if id % 2 == 0 { "yes" } else { "no" };
            assert_eq!(
                pick(&row(id), &names, &kinds, &mut plan),
                [id.to_string().as_str(), ok, &id.to_string()]
            );
        }
        // Another type, fields in another order, with the same plan: worked out again.
        assert_eq!(pick(&Other { ok: true, id: 9 }, &names, &kinds, &mut plan), ["9", "yes", "9"]);
        assert_eq!(pick(&row(4), &names, &kinds, &mut plan), ["4", "yes", "4"]);
    }
}
