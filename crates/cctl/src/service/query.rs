//! A request's query string: `key=value` pairs, percent-decoded, as Go's
//! `url.Values` encodes them.

use std::collections::HashMap;

/// The decoded query of a request.
#[derive(Debug, Default)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    /// Parses `query` (the part after `?`, if any).
    pub fn parse(query: Option<&str>) -> Self {
        let mut pairs = HashMap::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.insert(decode(key), decode(value));
        }
        Self(pairs)
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether `key` is given as true (`1`, `true`, or present and empty).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True" | ""))
    }

    /// `key` as a number, if given and one.
    pub fn number(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// `key` as a time Docker's clients send (`since`, `until`: seconds
    /// since the epoch, with a fraction), in nanoseconds, if given.
    pub fn time_ns(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => crate::clock::unix_ns(text)
                .map(Some)
                .ok_or_else(|| format!("{key} {text:?}: seconds since the epoch, as 1700000000.5")),
        }
    }

    /// The `filters` parameter (`{"label": ["a=b"], "dangling": {"true":
    /// true}}`: Docker's clients send both shapes) as kind and value pairs.
    pub fn filters(&self) -> Result<Vec<(String, String)>, String> {
        let Some(text) = self.get("filters").filter(|t| !t.is_empty()) else {
            return Ok(Vec::new());
        };
        let parsed: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("filters are not JSON: {e}"))?;
        let mut pairs = Vec::new();
        for (kind, values) in parsed.as_object().into_iter().flatten() {
            match values {
                serde_json::Value::Array(items) => pairs.extend(
                    items
                        .iter()
                        .filter_map(|v| v.as_str())
                        .map(|v| (kind.clone(), v.to_owned())),
                ),
                serde_json::Value::Object(map) => {
                    pairs.extend(map.keys().map(|v| (kind.clone(), v.clone())));
                }
                _ => return Err(format!("filter {kind}: a list of values")),
            }
        }
        Ok(pairs)
    }
}

/// Percent-decodes `text` (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| char::from(b).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::Query;

    #[test]
    fn values_are_decoded_as_go_encodes_them() {
        let query = Query::parse(Some(
            "fromImage=localhost%3A5000%2Ftest%2Fbusybox&tag=1&all=1&x=a+b&bad=%zz&end=%4",
        ));
        assert_eq!(query.get("fromImage"), Some("localhost:5000/test/busybox"));
        assert_eq!(query.get("tag"), Some("1"));
        assert!(query.flag("all"));
        assert!(!query.flag("stream"));
        assert_eq!(query.get("x"), Some("a b"));
        assert_eq!(query.get("bad"), Some("%zz"));
        assert_eq!(query.get("end"), Some("%4"));
        assert_eq!(Query::parse(None).get("a"), None);
    }

    #[test]
    fn filters_come_in_both_of_dockers_shapes() {
        let query = Query::parse(Some(
            "filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%2C%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D",
        ));
        let mut pairs = query.filters().unwrap();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                ("dangling".to_owned(), "true".to_owned()),
                ("label".to_owned(), "a=b".to_owned())
            ]
        );
        assert!(Query::parse(Some("filters=nope")).filters().is_err());
        assert!(Query::parse(None).filters().unwrap().is_empty());
    }
}
