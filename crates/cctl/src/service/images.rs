//! Images: create (a pull, its progress streamed as Docker's JSON lines)
//! and list.

use containerization_oci::progress::{ProgressEvent, ProgressSink};
use containerization_oci::store::ImageStore;
use containerization_oci::{Platform, Reference};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, error, from_error, json, streamed};
use super::query::Query;

/// Docker's short form of a digest: 12 hex digits.
fn short(digest: &containerization_oci::Digest) -> String {
    digest.hex().chars().take(12).collect()
}

/// `POST /images/create?fromImage=&tag=`: pulls for this host's platform.
/// Importing (`fromSrc`) is not built.
pub(crate) async fn create(service: &Service, query: &Query) -> Answer {
    if query.get("fromSrc").is_some() {
        return Err(error(
            StatusCode::NOT_IMPLEMENTED,
            "importing an image (fromSrc) is not supported by containerization's Docker API yet",
        ));
    }
    let from = query
        .get("fromImage")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "fromImage is required"))?;
    let typed = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) if tag.contains(':') => format!("{from}@{tag}"),
        Some(tag) => format!("{from}:{tag}"),
        None => from.to_owned(),
    };
    let reference: Reference = typed
        .parse()
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("{typed:?}: {e}")))?;
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let (sender, response) = streamed(StatusCode::OK, "application/json");
    fn line(value: &Value) -> bytes::Bytes {
        bytes::Bytes::from(format!("{value}\n"))
    }
    let events = sender.clone();
    let sink: ProgressSink = std::sync::Arc::new(move |event: &ProgressEvent| {
        let value = match event {
            ProgressEvent::Started { digest, .. } => {
                json!({ "status": "Pulling fs layer", "id": short(digest) })
            }
            ProgressEvent::Advanced { digest, done } => json!({
                "status": "Downloading",
                "progressDetail": { "current": done },
                "id": short(digest),
            }),
            ProgressEvent::Skipped { digest, .. } => {
                json!({ "status": "Already exists", "id": short(digest) })
            }
            ProgressEvent::Finished { digest } => {
                json!({ "status": "Pull complete", "id": short(digest) })
            }
        };
        // A slow client loses progress lines, never the pull.
        let _ = events.try_send(line(&value));
    });
    let client = crate::image::client(
        &service.root,
        &crate::image::RegistryOptions::default(),
        &reference,
        Some(sink),
    )
    .map_err(|e| from_error(&e))?;
    let tag = reference.to_string();
    // The pull's future is not `Send` (it holds the store across awaits):
    // it runs on a thread of its own while the response streams.
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let message = format!("cannot start the pull: {e}");
                let failed = json!({ "errorDetail": { "message": message }, "error": message });
                let _ = sender.blocking_send(line(&failed));
                return;
            }
        };
        runtime.block_on(async move {
            let first = json!({
                "status": format!("Pulling from {}", reference.repository()),
                "id": reference.api_reference(),
            });
            let _ = sender.send(line(&first)).await;
            let last = match client.pull(&store, &reference, &Platform::host()).await {
                Ok(image) => {
                    if let Ok(digest) = image.digest() {
                        let said = json!({ "status": format!("Digest: {digest}") });
                        let _ = sender.send(line(&said)).await;
                    }
                    json!({ "status": format!("Status: Downloaded newer image for {tag}") })
                }
                Err(e) => {
                    let message = format!("{e}");
                    json!({ "errorDetail": { "message": message }, "error": message })
                }
            };
            let _ = sender.send(line(&last)).await;
        });
    });
    Ok(response)
}

/// `GET /images/json`.
pub(crate) fn list(service: &Service) -> Answer {
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let images = store.list().map_err(|e| from_error(&e.into()))?;
    let shown: Vec<Value> = images
        .iter()
        .map(|image| {
            let resolved = store.resolve(&image.name, &Platform::host()).ok();
            // Docker's Id is the config's digest; its size, the layers'.
            let id = resolved.as_ref().map_or_else(
                || image.digest().map(|d| d.to_string()).unwrap_or_default(),
                |r| r.manifest.config().digest().to_string(),
            );
            let size: u64 = resolved
                .as_ref()
                .map_or(0, |r| r.manifest.layers().iter().map(|l| l.size()).sum());
            let created = resolved
                .as_ref()
                .and_then(|r| r.config.created().as_deref().and_then(epoch_seconds))
                .unwrap_or(0);
            json!({
                "Id": id,
                "ParentId": "",
                "RepoTags": [image.name],
                "RepoDigests": [],
                "Created": created,
                "Size": size,
                "SharedSize": -1,
                "VirtualSize": size,
                "Labels": {},
                "Containers": -1,
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(shown)))
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
    use super::epoch_seconds;

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
