//! The requests a test registry answered, read from its log.
//!
//! docker-registry logs one `msg="response completed"` line per request
//! (`msg="response completed with error"` for errors), with the method, the
//! URI and the status as `key=value` fields. A request refused for want of
//! a valid credential or token gets `msg="error authorizing context: …"`
//! instead, without a status: it was answered 401 (the value quoted
//! when it holds special characters). Tests count them to see what a client
//! did: whether a blob was uploaded or mounted, how many PATCHes went up.

use crate::Registry;

/// One request the registry answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// `GET`, `PATCH`, ….
    pub method: String,
    /// The path and query, as sent.
    pub uri: String,
    /// The status of the answer (0 when the log line has none).
    pub status: u16,
}

impl Registry {
    /// Every request the registry has answered so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        log.lines()
            .filter_map(|line| {
                let status = if line.contains("msg=\"response completed") {
                    field(line, "http.response.status")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0)
                } else if line.contains("msg=\"error authorizing context") {
                    401
                } else {
                    return None;
                };
                Some(LoggedRequest {
                    method: field(line, "http.request.method")?,
                    uri: field(line, "http.request.uri")?,
                    status,
                })
            })
            .collect()
    }
}

/// The value of ` key=value` or ` key="value"` in a log line.
fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '"' => return Some(value),
                c => value.push(c),
            }
        }
        None
    } else {
        Some(rest.split(' ').next().unwrap_or(rest).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn reads_plain_and_quoted_fields() {
        let line = r#"time="x" level=info msg="response completed" http.request.method=POST http.request.uri="/v2/a/blobs/uploads/?from=b&mount=sha256:00" http.response.status=201 http.response.written=0"#;
        assert_eq!(field(line, "http.request.method").as_deref(), Some("POST"));
        assert_eq!(
            field(line, "http.request.uri").as_deref(),
            Some("/v2/a/blobs/uploads/?from=b&mount=sha256:00")
        );
        assert_eq!(field(line, "http.response.status").as_deref(), Some("201"));
        assert_eq!(field(line, "http.request.host"), None);
    }
}
