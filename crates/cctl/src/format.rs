//! `--format` of list commands, as Docker's: `table` (the command's
//! columns), `json` (one object a line, in Docker's field names), or a
//! template of `{{.Field}}` (`{{json .}}`, `{{json .Field}}`,
//! `{{.Label "key"}}`), `table TEMPLATE` adding a header row and aligning
//! the columns its tabs separate. `\t` and `\n` in a template are a tab and
//! a new line, as Docker's CLI reads them.

use serde_json::{Map, Value};

/// One row: Docker's field names to their text.
pub type Row = Map<String, Value>;

/// The key under which a row keeps its labels as an object, for
/// `{{.Label "key"}}` (not shown by `{{json .}}`).
pub const LABELS: &str = "__labels";

/// What `--format` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// The command's own columns.
    Table,
    /// One JSON object a line.
    Json,
    /// A template per row, with a header row and aligned columns when
    /// `table` is set.
    Template {
        /// `table TEMPLATE`.
        table: bool,
        /// The template.
        text: String,
    },
}

impl std::str::FromStr for Shape {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let shape = match text.trim() {
            "" | "table" => Self::Table,
            "json" => Self::Json,
            _ => match text.strip_prefix("table ") {
                Some(rest) => Self::Template {
                    table: true,
                    text: rest.to_owned(),
                },
                None => Self::Template { table: false, text },
            },
        };
        if let Self::Template { text, .. } = &shape {
            parse(text)?;
        }
        Ok(shape)
    }
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String),
    Json(Option<String>),
    Label(String),
}

fn parse(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_owned()));
        }
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("template {template:?}: {{{{ is not closed"))?;
        let action = rest[start + 2..start + end].trim();
        let words: Vec<&str> = action.split_whitespace().collect();
        let piece = match words.as_slice() {
            ["json", "."] => Piece::Json(None),
            ["json", field] if field.starts_with('.') => Piece::Json(Some(field[1..].to_owned())),
            [".Label", key] => Piece::Label(key.trim_matches('"').to_owned()),
            [field] if field.starts_with('.') && field.len() > 1 => {
                Piece::Field(field[1..].to_owned())
            }
            _ => {
                return Err(format!(
                    "template {template:?}: {{{{{action}}}}} is not understood \
                     (use {{{{.Field}}}}, {{{{json .}}}} or {{{{.Label \"key\"}}}})"
                ));
            }
        };
        pieces.push(piece);
        rest = &rest[start + end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// `value` as a template prints it.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The row without its hidden keys.
fn shown(row: &Row) -> Value {
    Value::Object(
        row.iter()
            .filter(|(key, _)| !key.starts_with("__"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    )
}

/// `template` filled from `row`.
pub fn render(template: &str, row: &Row) -> Result<String, String> {
    let mut out = String::new();
    let field = |name: &str| {
        row.get(name).ok_or_else(|| {
            let names: Vec<&str> = row
                .keys()
                .map(String::as_str)
                .filter(|k| !k.starts_with("__"))
                .collect();
            format!("no field {name}: the fields are {}", names.join(", "))
        })
    };
    for piece in parse(template)? {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Field(name) => out.push_str(&text(field(&name)?)),
            Piece::Json(None) => out.push_str(&shown(row).to_string()),
            Piece::Json(Some(name)) => out.push_str(&field(&name)?.to_string()),
            Piece::Label(key) => out.push_str(&text(&row[LABELS][key.as_str()])),
        }
    }
    Ok(out)
}

/// The header of a `table` template: each field's header from `headers`
/// (or its name in capitals).
fn header(template: &str, headers: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::new();
    for piece in parse(template)? {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Field(name) | Piece::Json(Some(name)) => out.push_str(
                &headers
                    .iter()
                    .find(|(field, _)| *field == name)
                    .map_or_else(|| name.to_uppercase(), |(_, title)| (*title).to_owned()),
            ),
            Piece::Json(None) => out.push_str("JSON"),
            Piece::Label(key) => out.push_str(&key.to_uppercase()),
        }
    }
    Ok(out)
}

/// Lines split on tabs, each column as wide as its widest cell and three
/// spaces apart (Docker's table writer).
pub fn align(lines: &[String]) -> Vec<String> {
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    cells
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count() + 3;
                    line.push_str(&" ".repeat(pad));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

/// Prints `rows` as `shape` says; `Table` prints `table` (a template with
/// tabs between the command's columns).
pub fn print(
    shape: &Shape,
    rows: &[Row],
    table: &str,
    headers: &[(&str, &str)],
) -> Result<(), String> {
    let (template, with_header) = match shape {
        Shape::Json => {
            for row in rows {
                println!("{}", shown(row));
            }
            return Ok(());
        }
        Shape::Table => (table, true),
        Shape::Template { table, text } => (text.as_str(), *table),
    };
    let mut lines = Vec::new();
    if with_header {
        lines.push(header(template, headers)?);
    }
    for row in rows {
        lines.push(render(template, row)?);
    }
    let lines = if with_header { align(&lines) } else { lines };
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> Row {
        let Value::Object(row) = json!({
            "ID": "abc",
            "Size": 12,
            "Names": "web",
            LABELS: { "app": "shop" },
        }) else {
            unreachable!()
        };
        row
    }

    #[test]
    fn templates_fill_from_rows_as_dockers() {
        assert_eq!(render("{{.ID}} {{ .Names }}", &row()).unwrap(), "abc web");
        assert_eq!(render("{{.Size}}", &row()).unwrap(), "12");
        assert_eq!(render("{{.Label \"app\"}}", &row()).unwrap(), "shop");
        assert_eq!(
            render("{{json .}}", &row()).unwrap(),
            r#"{"ID":"abc","Names":"web","Size":12}"#
        );
        assert_eq!(render("{{json .ID}}", &row()).unwrap(), r#""abc""#);
        let missing = render("{{.Nope}}", &row()).unwrap_err();
        assert!(
            missing.contains("no field Nope") && missing.contains("Names"),
            "{missing}"
        );
        assert!("{{.ID".parse::<Shape>().is_err());
        assert!("{{range .}}".parse::<Shape>().is_err());
    }

    #[test]
    fn shapes_parse_and_tables_align() {
        assert_eq!("table".parse::<Shape>().unwrap(), Shape::Table);
        assert_eq!("json".parse::<Shape>().unwrap(), Shape::Json);
        assert_eq!(
            "table {{.ID}}\\t{{.Names}}".parse::<Shape>().unwrap(),
            Shape::Template {
                table: true,
                text: "{{.ID}}\t{{.Names}}".to_owned()
            }
        );
        assert_eq!(
            header("{{.ID}}\t{{.Names}}", &[("ID", "CONTAINER ID")]).unwrap(),
            "CONTAINER ID\tNAMES"
        );
        assert_eq!(
            align(&["A\tBB".to_owned(), "CCC\tD".to_owned()]),
            ["A     BB", "CCC   D"]
        );
    }
}
