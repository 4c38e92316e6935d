//! Printing state for people (tables) and scripts (JSON with the tables' columns as
//! snake_case keys).

use comfy_table::{Cell, Color, Table, presets};
use serde_json::{Map, Value};
use std::io::IsTerminal;

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

    pub fn render(&self) -> String {
        let colour = colour_enabled();
        let mut t = Table::new();
        t.load_style(presets::NOTHING);
        t.set_header(self.columns.iter().map(|c| c.to_uppercase()));
        for r in &self.rows {
            t.add_row(r.iter().enumerate().map(|(i, v)| {
                let text = match v {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => {
                        if *b {
                            "yes".into()
                        } else {
                            "no".into()
                        }
                    }
                    other => other.to_string(),
                };
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

    pub fn print(&self, json: bool) {
        if json {
            println!("{}", self.to_json());
        } else if self.rows.is_empty() {
            println!("(none)");
        } else {
            println!("{}", self.render());
        }
    }
}
