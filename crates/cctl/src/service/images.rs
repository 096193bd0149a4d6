//! Images in the store: list (with Docker's filters), inspect, tag,
//! remove and prune. Pulls and pushes are in `registry`.

use containerization_oci::store::ImageStore;
use containerization_oci::{Platform, Reference};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, ApiError, error, from_error, json};
use super::query::Query;

/// One of Docker's image list filters.
enum ImageFilter {
    /// `reference=PATTERN`: a name matching a glob (`*` within a path
    /// part), with or without its tag, in full or in Docker's short form.
    Reference(String),
    /// `dangling=true|false`: untagged images (there are none here: every
    /// image in the store has a name).
    Dangling(bool),
    /// `label=KEY` or `label=KEY=VALUE` on the image's config.
    Label(String, Option<String>),
    /// `before=IMAGE`, `since=IMAGE`: made before or after that image.
    Before(i64),
    Since(i64),
}

fn image_filters(store: &ImageStore, query: &Query) -> Result<Vec<ImageFilter>, ApiError> {
    let bad = |message: String| error(StatusCode::BAD_REQUEST, message);
    let created_of = |name: &str| -> Result<i64, ApiError> {
        let (_, resolved) = resolve(store, name)?;
        Ok(created(&resolved))
    };
    query
        .filters()
        .map_err(bad)?
        .into_iter()
        .map(|(kind, value)| match kind.as_str() {
            "reference" => Ok(ImageFilter::Reference(value)),
            "dangling" => match value.as_str() {
                "true" | "1" => Ok(ImageFilter::Dangling(true)),
                "false" | "0" => Ok(ImageFilter::Dangling(false)),
                _ => Err(bad(format!("invalid filter 'dangling={value}'"))),
            },
            "label" => Ok(match value.split_once('=') {
                Some((key, wanted)) => ImageFilter::Label(key.to_owned(), Some(wanted.to_owned())),
                None => ImageFilter::Label(value, None),
            }),
            "before" => Ok(ImageFilter::Before(created_of(&value)?)),
            "since" => Ok(ImageFilter::Since(created_of(&value)?)),
            _ => Err(bad(format!("invalid filter '{kind}'"))),
        })
        .collect()
}

/// `name` as Docker shows names of Docker Hub's images (`busybox:1`).
fn familiar(name: &str) -> &str {
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

/// Whether image `name` (with `labels`, made at `created`) passes `filter`.
fn admits(filter: &ImageFilter, name: &str, labels: &Value, made: i64) -> bool {
    match filter {
        ImageFilter::Reference(pattern) => {
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
        ImageFilter::Dangling(dangling) => !dangling,
        ImageFilter::Label(key, wanted) => match (&labels[key.as_str()], wanted) {
            (Value::String(_), None) => true,
            (Value::String(value), Some(wanted)) => value == wanted,
            _ => false,
        },
        ImageFilter::Before(time) => made < *time,
        ImageFilter::Since(time) => made > *time,
    }
}

/// When the image was made (seconds since the epoch; 0 when unknown).
fn created(resolved: &containerization_oci::store::ResolvedImage) -> i64 {
    resolved
        .config
        .created()
        .as_deref()
        .and_then(epoch_seconds)
        .unwrap_or(0)
}

/// `GET /images/json?filters=`: the store's images for this host's
/// platform; filters `reference`, `dangling`, `label`, `before`, `since`.
pub(crate) fn list(service: &Service, query: &Query) -> Answer {
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let filters = image_filters(&store, query)?;
    let images = store.list().map_err(|e| from_error(&e.into()))?;
    let mut shown = Vec::new();
    for image in &images {
        let resolved = store.resolve(&image.name, &Platform::host()).ok();
        let config: Value = resolved
            .as_ref()
            .and_then(|r| serde_json::from_slice(&r.config_bytes).ok())
            .unwrap_or_default();
        let labels = config["config"]["Labels"].clone();
        let made = resolved.as_ref().map_or(0, created);
        if !filters
            .iter()
            .all(|f| admits(f, &image.name, &labels, made))
        {
            continue;
        }
        // Docker's Id is the config's digest; its size, the layers'.
        let id = resolved.as_ref().map_or_else(
            || image.digest().map(|d| d.to_string()).unwrap_or_default(),
            |r| r.manifest.config().digest().to_string(),
        );
        let size: u64 = resolved
            .as_ref()
            .map_or(0, |r| r.manifest.layers().iter().map(|l| l.size()).sum());
        shown.push(json!({
            "Id": id,
            "ParentId": "",
            "RepoTags": [image.name],
            "RepoDigests": [],
            "Created": made,
            "Size": size,
            "SharedSize": -1,
            "VirtualSize": size,
            "Labels": if labels.is_object() { labels } else { json!({}) },
            "Containers": -1,
        }));
    }
    Ok(json(StatusCode::OK, &Value::Array(shown)))
}

/// `POST /images/prune?filters=`: blobs no image needs go; with
/// `dangling=false` (`docker image prune -a`) so does every image no
/// container was made from. (Without it Docker removes untagged images,
/// which the store never holds.)
pub(crate) fn prune(service: &Service, query: &Query) -> Answer {
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let mut every = false;
    for (kind, value) in query
        .filters()
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?
    {
        match (kind.as_str(), value.as_str()) {
            ("dangling", "false" | "0") => every = true,
            ("dangling", "true" | "1") => {}
            _ => {
                return Err(error(
                    StatusCode::NOT_IMPLEMENTED,
                    format!(
                        "image prune filter {kind}={value} is not supported by containerization's \
                         Docker API yet (dangling is)"
                    ),
                ));
            }
        }
    }
    let mut deleted = Vec::new();
    if every {
        for image in store.list().map_err(|e| from_error(&e.into()))? {
            let in_use =
                crate::image_in_use::refuse_if_in_use(&service.root, &store, &image.name).is_err();
            if !in_use && store.untag(&image.name).is_ok() {
                deleted.push(json!({ "Untagged": image.name }));
            }
        }
    }
    let report = store.prune().map_err(|e| from_error(&e.into()))?;
    deleted.extend(
        report
            .removed
            .iter()
            .map(|digest| json!({ "Deleted": digest.to_string() })),
    );
    crate::image::collect_rootfs(&service.root, &report).map_err(|e| from_error(&e))?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) },
            "SpaceReclaimed": report.freed_bytes,
        }),
    ))
}

/// Seconds since the Unix epoch of an RFC 3339 time (`2024-01-02T03:04:05Z`,
/// fractions and offsets allowed).
fn epoch_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let clock: String = time.chars().take(8).collect();
    let mut clock = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let zone = &time[8.min(time.len())..];
    let zone = zone.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone {
        "" | "Z" | "z" => 0,
        signed => {
            let sign = if signed.starts_with('-') { -1 } else { 1 };
            let (h, m) = signed.get(1..)?.split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (the inverse of crate::clock::civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// The image `name` names, resolved for this host, or Docker's 404.
fn resolve(
    store: &ImageStore,
    name: &str,
) -> Result<(String, containerization_oci::store::ResolvedImage), super::body::ApiError> {
    let stored = crate::image::store_name(store, name);
    store
        .resolve(&stored, &Platform::host())
        .map(|resolved| (stored, resolved))
        .map_err(|_| error(StatusCode::NOT_FOUND, format!("No such image: {name}")))
}

/// `GET /images/{name}/json`.
pub(crate) fn inspect(service: &Service, name: &str) -> Answer {
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let (stored, resolved) = resolve(&store, name)?;
    let config: Value = serde_json::from_slice(&resolved.config_bytes).unwrap_or_default();
    let size: u64 = resolved.manifest.layers().iter().map(|l| l.size()).sum();
    Ok(json(
        StatusCode::OK,
        &json!({
            "Id": resolved.manifest.config().digest().to_string(),
            "RepoTags": [stored],
            "RepoDigests": [format!("{}@{}", stored.split(':').next().unwrap_or(&stored), resolved.manifest_descriptor.digest())],
            "Parent": "",
            "Comment": "",
            "Created": config["created"],
            "Container": "",
            "Config": config["config"],
            "Author": config["author"],
            "Architecture": config["architecture"],
            "Variant": config["variant"],
            "Os": config["os"],
            "Size": size,
            "VirtualSize": size,
            "RootFS": config["rootfs"],
            "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        }),
    ))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub(crate) fn tag(service: &Service, name: &str, query: &Query) -> Answer {
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let (stored, _) = resolve(&store, name)?;
    let repo = query
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "repo is required"))?;
    let target = format!(
        "{repo}:{}",
        query
            .get("tag")
            .filter(|t| !t.is_empty())
            .unwrap_or("latest")
    );
    let target = target
        .parse::<Reference>()
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("{target:?}: {e}")))?
        .to_string();
    store
        .tag(&stored, &target)
        .map_err(|e| from_error(&e.into()))?;
    Ok(super::body::nothing(StatusCode::CREATED))
}

/// `DELETE /images/{name}?force=`: refused (409) while a container was
/// made from it, unless forced; then blobs and bases no one needs go.
pub(crate) fn remove(service: &Service, name: &str, query: &Query) -> Answer {
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let stored = crate::image::store_name(&store, name);
    if store.get(&stored).is_err() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("No such image: {name}"),
        ));
    }
    if !query.flag("force") {
        crate::image_in_use::refuse_if_in_use(&service.root, &store, &stored)
            .map_err(|e| error(StatusCode::CONFLICT, crate::report::one_line(&e)))?;
    }
    store.untag(&stored).map_err(|e| from_error(&e.into()))?;
    let mut answer = vec![json!({ "Untagged": stored })];
    let report = store.prune().map_err(|e| from_error(&e.into()))?;
    for digest in &report.removed {
        answer.push(json!({ "Deleted": digest.to_string() }));
    }
    crate::image::collect_rootfs(&service.root, &report).map_err(|e| from_error(&e))?;
    Ok(json(StatusCode::OK, &Value::Array(answer)))
}

#[cfg(test)]
mod tests {
    use super::{epoch_seconds, glob};

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
    fn rfc3339_times_become_epoch_seconds() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            epoch_seconds("2024-02-29T12:34:56.789Z"),
            Some(1_709_210_096)
        );
        assert_eq!(
            epoch_seconds("2024-02-29T13:34:56+01:00"),
            Some(1_709_210_096)
        );
        for seconds in [0_i64, 951_782_400, 1_709_210_096, 4_102_444_799] {
            let (y, mo, d, h, mi, s) = crate::clock::civil(seconds);
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
            assert_eq!(epoch_seconds(&text), Some(seconds), "{text}");
        }
        assert_eq!(epoch_seconds("yesterday"), None);
    }
}
