//! Images in the store: list (with Docker's filters), inspect, tag,
//! remove and prune. Pulls and pushes are in `registry`.

use containerization_oci::store::ImageStore;
use containerization_oci::{Platform, Reference};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, ApiError, error, from_error, json};
use super::query::Query;
use crate::image_filter::{FilterError, ImageFilter, Looked, look};

fn image_filters(store: &ImageStore, query: &Query) -> Result<Vec<ImageFilter>, ApiError> {
    query
        .filters()
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?
        .into_iter()
        .map(|(kind, value)| {
            ImageFilter::parse(store, &kind, &value).map_err(|e| match e {
                FilterError::NoImage(name) => {
                    error(StatusCode::NOT_FOUND, format!("No such image: {name}"))
                }
                FilterError::Invalid(message) => error(StatusCode::BAD_REQUEST, message),
            })
        })
        .collect()
}

/// `GET /images/json?filters=`: the store's images for this host's
/// platform; filters `reference`, `dangling`, `label`, `before`, `since`.
pub(crate) fn list(service: &Service, query: &Query) -> Answer {
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let filters = image_filters(&store, query)?;
    let images = store.list().map_err(|e| from_error(&e.into()))?;
    let mut shown = Vec::new();
    for image in &images {
        let Looked {
            resolved,
            labels,
            made,
        } = look(&store, &image.name);
        if !filters.iter().all(|f| f.admits(&image.name, &labels, made)) {
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
    let mut gone = Vec::new();
    if every {
        for image in store.list().map_err(|e| from_error(&e.into()))? {
            let in_use =
                crate::image_in_use::refuse_if_in_use(&service.root, &store, &image.name).is_err();
            let id = image_id(&store, &image.name);
            if !in_use && store.untag(&image.name).is_ok() {
                deleted.push(json!({ "Untagged": image.name }));
                gone.push((id, image.name));
            }
        }
    }
    let report = store.prune().map_err(|e| from_error(&e.into()))?;
    for (id, name) in &gone {
        untagged(service, id, name, &report.removed);
    }
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
    let id = image_id(&store, &stored);
    service
        .events
        .publish(super::events::image_event("tag", &id, &target));
    Ok(super::body::nothing(StatusCode::CREATED))
}

/// Docker's id of image `name` (its config's digest), or its manifest's
/// digest when that cannot be read.
fn image_id(store: &ImageStore, name: &str) -> String {
    match store.resolve(name, &Platform::host()) {
        Ok(resolved) => resolved.manifest.config().digest().to_string(),
        Err(_) => store
            .get(name)
            .map(|image| image.descriptor.digest().to_string())
            .unwrap_or_default(),
    }
}

/// Publishes `untag` for `name` (image `id`) and `delete` if the prune
/// `removed` its config.
fn untagged(service: &Service, id: &str, name: &str, removed: &[containerization_oci::Digest]) {
    use super::events::image_event;
    service.events.publish(image_event("untag", id, name));
    if removed.iter().any(|digest| digest.to_string() == id) {
        service.events.publish(image_event("delete", id, name));
    }
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
    let id = image_id(&store, &stored);
    store.untag(&stored).map_err(|e| from_error(&e.into()))?;
    let mut answer = vec![json!({ "Untagged": stored })];
    let report = store.prune().map_err(|e| from_error(&e.into()))?;
    untagged(service, &id, &stored, &report.removed);
    for digest in &report.removed {
        answer.push(json!({ "Deleted": digest.to_string() }));
    }
    crate::image::collect_rootfs(&service.root, &report).map_err(|e| from_error(&e))?;
    Ok(json(StatusCode::OK, &Value::Array(answer)))
}
