//! A table's cells taken straight from a row's `Serialize`: only the fields shown are
//! kept, as small values, so a table is drawn from the very data `--json` prints without
//! building a JSON object per row (a map of every field, with its keys allocated and
//! sorted: it was most of `soamview session`'s time over 10,000 sessions).

use serde::Serialize;
use serde::ser::{self, Impossible};

/// One field's value, as far as a table needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    List(Vec<Cell>),
}

/// The fields `names` of `row` (a struct), in that order; `Null` where it has none.
pub fn pick<R: Serialize, S: AsRef<str>>(row: &R, names: &[S]) -> Vec<Cell> {
    pick_with(row, names, &mut Plan::default())
}

/// Which of the wanted names each field a row serializes goes to, by the field's place
/// in the row: rows of one type serialize the same fields in the same order, so a long
/// listing compares field names once, not once per row.
#[derive(Debug, Default, Clone)]
pub struct Plan(Vec<(&'static str, Vec<usize>)>);

/// [`pick`], reusing (and filling) `plan` across rows of one type and one `names`.
pub fn pick_with<R: Serialize, S: AsRef<str>>(row: &R, names: &[S], plan: &mut Plan) -> Vec<Cell> {
    let mut p = Picker {
        names,
        plan,
        field: 0,
        out: vec![Cell::Null; names.len()],
    };
    // A row that is not a struct has no such fields: all Null.
    let _ = row.serialize(&mut p);
    p.out
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

struct Picker<'a, S> {
    names: &'a [S],
    plan: &'a mut Plan,
    /// How many fields of this row came before.
    field: usize,
    out: Vec<Cell>,
}

impl<'a, 'b, S: AsRef<str>> ser::SerializeStruct for &'b mut Picker<'a, S> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        let at = self.field;
        self.field += 1;
        // The same field name (the same static string) as the row before, at this place:
        // the same columns. Otherwise, work them out and remember.
        if self.plan.0.get(at).is_none_or(|(k, _)| !std::ptr::eq(*k, key)) {
            let slots = self
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
            // A value a cell cannot hold shows as empty rather than failing the row.
            self.out[i] = value.serialize(CellSer).unwrap_or(Cell::Null);
        }
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// Only `serialize_struct` (and what forwards to it) makes sense for a row.
macro_rules! not_a_struct {
    ($($f:ident($($t:ty),*)),* $(,)?) => {
        $(fn $f(self, $(_: $t),*) -> Result<Self::Ok, Error> { unsupported("a row that is not a struct") })*
    };
}

impl<'a, 'b, S: AsRef<str>> ser::Serializer for &'b mut Picker<'a, S> {
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

/// Scalars: each becomes the cell of its kind.
macro_rules! cell_from {
    ($($f:ident($t:ty) => $kind:ident),* $(,)?) => {
        $(fn $f(self, v: $t) -> Result<Cell, Error> { Ok(Cell::$kind(v.into())) })*
    };
}

/// One field's value as a [`Cell`].
struct CellSer;

/// The items of a list field.
struct ListSer(Vec<Cell>);

impl ser::SerializeSeq for ListSer {
    type Ok = Cell;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Error> {
        self.0.push(v.serialize(CellSer)?);
        Ok(())
    }
    fn end(self) -> Result<Cell, Error> {
        Ok(Cell::List(self.0))
    }
}

impl ser::Serializer for CellSer {
    type Ok = Cell;
    type Error = Error;
    type SerializeSeq = ListSer;
    type SerializeTuple = Impossible<Cell, Error>;
    type SerializeTupleStruct = Impossible<Cell, Error>;
    type SerializeTupleVariant = Impossible<Cell, Error>;
    type SerializeMap = Impossible<Cell, Error>;
    type SerializeStruct = Impossible<Cell, Error>;
    type SerializeStructVariant = Impossible<Cell, Error>;

    cell_from!(
        serialize_bool(bool) => Bool,
        serialize_i8(i8) => I64,
        serialize_i16(i16) => I64,
        serialize_i32(i32) => I64,
        serialize_i64(i64) => I64,
        serialize_u8(u8) => U64,
        serialize_u16(u16) => U64,
        serialize_u32(u32) => U64,
        serialize_u64(u64) => U64,
        serialize_f32(f32) => F64,
        serialize_f64(f64) => F64,
    );
    fn serialize_char(self, v: char) -> Result<Cell, Error> {
        Ok(Cell::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Cell, Error> {
        Ok(Cell::Str(v.to_string()))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Cell, Error> {
        unsupported("bytes")
    }
    fn serialize_none(self) -> Result<Cell, Error> {
        Ok(Cell::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<Cell, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Cell, Error> {
        Ok(Cell::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Cell, Error> {
        Ok(Cell::Null)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Cell, Error> {
        // The variant's serialised name (after serde's renames), as JSON shows it.
        Ok(Cell::Str(variant.to_string()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<Cell, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(self, _: &'static str, _: u32, _: &'static str, _: &T) -> Result<Cell, Error> {
        unsupported("an enum with data")
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<ListSer, Error> {
        Ok(ListSer(Vec::with_capacity(len.unwrap_or(0))))
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
    }

    #[test]
    fn picks_the_named_fields_as_serde_names_them() {
        let r = Row {
            id: 7,
            name: Some("n".into()),
            tag: None,
            state: State::Open,
            kind: "Batch",
            types: vec!["".into(), "Keep".into()],
            ok: true,
            delta: -2,
            run_s: 1.5,
        };
        let cells = pick(
            &r,
            &["state", "id", "type", "tag", "missing", "types", "ok", "delta", "run_s", "name"],
        );
        assert_eq!(
            cells,
            vec![
                Cell::Str("open".into()),
                Cell::U64(7),
                Cell::Str("Batch".into()),
                Cell::Null,
                Cell::Null,
                Cell::List(vec![Cell::Str("".into()), Cell::Str("Keep".into())]),
                Cell::Bool(true),
                Cell::I64(-2),
                Cell::F64(1.5),
                Cell::Str("n".into()),
            ]
        );
        // Not a struct: nothing to pick.
        assert_eq!(pick(&5u32, &["id".to_string()]), vec![Cell::Null]);
    }

    #[derive(Serialize)]
    struct Other {
        ok: bool,
        id: u64,
    }

    #[test]
    fn a_plan_kept_across_rows_follows_what_each_row_serializes() {
        let names = ["id", "ok", "id"];
        let mut plan = Plan::default();
        let row = |id| Row {
            id,
            name: None,
            tag: None,
            state: State::Open,
            kind: "",
            types: Vec::new(),
            ok: id % 2 == 0,
            delta: 0,
            run_s: 0.0,
        };
        for id in 1..4 {
            // A name asked for twice fills both columns.
            assert_eq!(
                pick_with(&row(id), &names, &mut plan),
                vec![Cell::U64(id), Cell::Bool(id % 2 == 0), Cell::U64(id)]
            );
        }
        // Another type, fields in another order, with the same plan: worked out again.
        assert_eq!(
            pick_with(&Other { ok: true, id: 9 }, &names, &mut plan),
            vec![Cell::U64(9), Cell::Bool(true), Cell::U64(9)]
        );
        assert_eq!(
            pick_with(&row(4), &names, &mut plan),
            vec![Cell::U64(4), Cell::Bool(true), Cell::U64(4)]
        );
    }
}
