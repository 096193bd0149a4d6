//! Docker's `--env-file` format: one `KEY=VALUE` or `KEY` per line.
//!
//! Lines starting with `#` (after leading white space) and blank lines are
//! ignored; the key's leading white space is trimmed; the value is taken
//! literally, quotes and trailing spaces included. A `KEY` alone stands for
//! the host's value of `KEY` (resolved by [`super::process()`]). A key with
//! white space in it is an error naming the file and line.

use std::path::Path;

use crate::Error;

/// Reads the env file at `path`: its `KEY=VALUE` and bare `KEY` lines, in
/// order.
pub fn parse_env_file(path: &Path) -> Result<Vec<String>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes, path)
}

/// Parses the contents of the env file `path`.
fn parse(bytes: &[u8], path: &Path) -> Result<Vec<String>, Error> {
    let bad = |number: usize, detail: String| Error::InvalidOption {
        option: "--env-file".into(),
        detail: format!("{} line {number}: {detail}", path.display()),
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut lines = Vec::new();
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw)
            .map_err(|_| bad(number, "is not UTF-8; save the file as UTF-8".into()))?
            .trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split_once('=').map_or(line, |(name, _)| name);
        if name.is_empty() {
            return Err(bad(
                number,
                format!("{line:?} has no variable name; write KEY=VALUE"),
            ));
        }
        if name.contains(char::is_whitespace) {
            return Err(bad(
                number,
                format!(
                    "variable name {name:?} contains white space; write KEY=VALUE with no space in KEY or before '='"
                ),
            ));
        }
        lines.push(line.to_owned());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Vec<String>, Error> {
        parse(text.as_bytes(), Path::new("app.env"))
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let got = parse_text("# settings\n\n   \nA=1\n  # indented comment\nB=2\n").unwrap();
        assert_eq!(got, ["A=1", "B=2"]);
    }

    #[test]
    fn values_are_taken_literally() {
        let got = parse_text("A=\"quoted\"  \nB= spaced = out\nC=\n").unwrap();
        assert_eq!(got, ["A=\"quoted\"  ", "B= spaced = out", "C="]);
    }

    #[test]
    fn leading_white_space_of_the_key_is_trimmed() {
        assert_eq!(parse_text("  \tA=1\r\n").unwrap(), ["A=1"]);
    }

    #[test]
    fn bare_keys_are_kept_for_the_hosts_value() {
        assert_eq!(parse_text("HOME\nA=1").unwrap(), ["HOME", "A=1"]);
    }

    #[test]
    fn key_with_white_space_is_an_error_naming_file_and_line() {
        let err = parse_text("A=1\nMY VAR=2\n").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("app.env line 2"), "{message}");
        assert!(message.contains("\"MY VAR\""), "{message}");
        let err = parse_text("A =1\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn missing_key_is_an_error() {
        let err = parse_text("=1\n").unwrap_err();
        assert!(err.to_string().contains("no variable name"), "{err}");
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        assert_eq!(
            parse(b"\xEF\xBB\xBFA=1\n", Path::new("x")).unwrap(),
            ["A=1"]
        );
    }

    #[test]
    fn reads_a_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vars.env");
        std::fs::write(&path, "X=1\n").unwrap();
        assert_eq!(parse_env_file(&path).unwrap(), ["X=1"]);
        let err = parse_env_file(&dir.path().join("absent.env")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }
}
