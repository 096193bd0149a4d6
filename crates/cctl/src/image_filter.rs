//! Docker's image list filters (`docker images --filter`), for
//! `cctl image ls --filter` and the Docker API's image list.

use containerization_oci::Platform;
use containerization_oci::store::{ImageStore, ResolvedImage};
use serde_json::Value;

/// One of Docker's image list filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageFilter {
    /// `reference=PATTERN`: a name matching a glob (`*` and `?` within a
    /// path part), with or without its tag, in full or in Docker's short
    /// form (`busybox:1` for `docker.io/library/busybox:1`).
    Reference(String),
    /// `dangling=true|false`: untagged images (there are none here: every
    /// image in the store has a name).
    Dangling(bool),
    /// `label=KEY` or `label=KEY=VALUE` on the image's config.
    Label(String, Option<String>),
    /// `before=IMAGE`: made before that image (seconds since the epoch).
    Before(i64),
    /// `since=IMAGE`: made after that image.
    Since(i64),
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// `before` or `since` named an image the store lacks.
    NoImage(String),
    /// Not a filter Docker knows, or a value it refuses.
    Invalid(String),
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoImage(name) => write!(f, "no such image: {name}"),
            Self::Invalid(message) => f.write_str(message),
        }
    }
}

impl ImageFilter {
    /// The filter `kind=value`; `before` and `since` look their image up
    /// in `store`.
    pub fn parse(store: &ImageStore, kind: &str, value: &str) -> Result<Self, FilterError> {
        let created_of = |name: &str| -> Result<i64, FilterError> {
            let stored = crate::image::store_name(store, name);
            store
                .resolve(&stored, &Platform::host())
                .map(|resolved| created(&resolved))
                .map_err(|_| FilterError::NoImage(name.to_owned()))
        };
        match kind {
            "reference" => Ok(Self::Reference(value.to_owned())),
            "dangling" => match value {
                "true" | "1" => Ok(Self::Dangling(true)),
                "false" | "0" => Ok(Self::Dangling(false)),
                _ => Err(FilterError::Invalid(format!(
                    "invalid filter 'dangling={value}': true or false"
                ))),
            },
            "label" => Ok(match value.split_once('=') {
                Some((key, wanted)) => Self::Label(key.to_owned(), Some(wanted.to_owned())),
                None => Self::Label(value.to_owned(), None),
            }),
            "before" => Ok(Self::Before(created_of(value)?)),
            "since" => Ok(Self::Since(created_of(value)?)),
            _ => Err(FilterError::Invalid(format!(
                "invalid filter '{kind}': filters are reference, dangling, label, before and since"
            ))),
        }
    }

    /// Whether image `name` (with the config's `labels`, made at `made`)
    /// passes.
    pub fn admits(&self, name: &str, labels: &Value, made: i64) -> bool {
        match self {
            Self::Reference(pattern) => {
                let untagged = |n: &str| -> String {
                    match n.rfind(':') {
                        Some(at) if !n[at..].contains('/') => n[..at].to_owned(),
                        _ => n.to_owned(),
                    }
                };
                let forms = [
                    name.to_owned(),
                    familiar(name).to_owned(),
                    untagged(name),
                    untagged(familiar(name)),
                ];
                forms
                    .iter()
                    .any(|form| glob(pattern.as_bytes(), form.as_bytes()))
            }
            Self::Dangling(dangling) => !dangling,
            Self::Label(key, wanted) => match (&labels[key.as_str()], wanted) {
                (Value::String(_), None) => true,
                (Value::String(value), Some(wanted)) => value == wanted,
                _ => false,
            },
            Self::Before(time) => made < *time,
            Self::Since(time) => made > *time,
        }
    }
}

/// What the filters look at of an image, and what lists show.
pub struct Looked {
    /// Its documents for this host's platform, when they can be read.
    pub resolved: Option<ResolvedImage>,
    /// Its config's labels (`null` when it has none).
    pub labels: Value,
    /// When it was made (seconds since the epoch; 0 when unknown).
    pub made: i64,
}

/// Looks at image `name` in `store` (one whose documents cannot be read
/// still lists, with no labels, platform or time).
pub fn look(store: &ImageStore, name: &str) -> Looked {
    let resolved = store.resolve(name, &Platform::host()).ok();
    let config: Value = resolved
        .as_ref()
        .and_then(|r| serde_json::from_slice(&r.config_bytes).ok())
        .unwrap_or_default();
    Looked {
        made: resolved.as_ref().map_or(0, created),
        labels: config["config"]["Labels"].clone(),
        resolved,
    }
}

/// `name` as Docker shows names of Docker Hub's images (`busybox:1`).
pub fn familiar(name: &str) -> &str {
    name.strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name)
}

/// Whether `text` matches the glob `pattern` (`*` and `?` never match `/`).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob(rest, text)
                || text
                    .split_first()
                    .is_some_and(|(c, more)| *c != b'/' && glob(pattern, more))
        }
        (Some((b'?', rest)), Some((c, more))) => *c != b'/' && glob(rest, more),
        (Some((p, rest)), Some((c, more))) => p == c && glob(rest, more),
        _ => false,
    }
}

/// When the image was made (seconds since the epoch; 0 when unknown).
pub fn created(resolved: &ResolvedImage) -> i64 {
    resolved
        .config
        .created()
        .as_deref()
        .and_then(crate::clock::epoch_seconds)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_dockers_reference_filter() {
        assert!(glob(b"busybox", b"busybox"));
        assert!(glob(b"busy*", b"busybox"));
        assert!(glob(b"*/test/*", b"127.0.0.1:5000/test/busybox"));
        assert!(!glob(b"*", b"test/busybox"));
        assert!(glob(b"b?sybox:*", b"busybox:1"));
        assert!(!glob(b"busybox", b"busybox2"));
    }

    #[test]
    fn references_match_in_full_short_and_untagged_forms() {
        let filter = ImageFilter::Reference("busybox".to_owned());
        assert!(filter.admits("docker.io/library/busybox:latest", &Value::Null, 0));
        assert!(!filter.admits("docker.io/library/alpine:3", &Value::Null, 0));
        let tagged = ImageFilter::Reference("*/test/busybox:1".to_owned());
        assert!(tagged.admits("127.0.0.1:5000/test/busybox:1", &Value::Null, 0));
        let labels = serde_json::json!({ "app": "shop" });
        assert!(ImageFilter::Label("app".into(), None).admits("x", &labels, 0));
        assert!(!ImageFilter::Label("app".into(), Some("cart".into())).admits("x", &labels, 0));
        assert!(!ImageFilter::Dangling(true).admits("x", &labels, 0));
        assert!(ImageFilter::Before(10).admits("x", &labels, 5));
    }
}
