//! Volumes: create, list, inspect, remove and prune (named volumes are
//! ext4 disk images, driver `local`).

use containerization::volume::Volume;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::Service;
use super::body::{Answer, ApiError, error, from_error, json, nothing};

/// A volume as Docker shows it.
fn shape(service: &Service, volume: &Volume) -> Value {
    let used = std::fs::metadata(&volume.disk)
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
        .unwrap_or(0);
    json!({
        "Name": volume.name,
        "Driver": "local",
        "Mountpoint": volume.disk,
        "CreatedAt": crate::clock::rfc3339_millis(Some(volume.created_ms)),
        "Scope": "local",
        "Labels": volume.labels,
        "Options": {},
        "UsageData": {
            "Size": used,
            "RefCount": service.manager.store().volume_users(&volume.name).map_or(-1, |u| i64::try_from(u.len()).unwrap_or(-1)),
        },
    })
}

fn not_found(name: &str) -> ApiError {
    error(StatusCode::NOT_FOUND, format!("get {name}: no such volume"))
}

/// `POST /volumes/create` with `{"Name", "Driver", "DriverOpts", "Labels"}`.
pub(crate) async fn create(service: &Service, request: Request<Incoming>) -> Answer {
    let body = super::body::read_json(request).await?;
    let driver = body["Driver"].as_str().unwrap_or_default();
    if !driver.is_empty() && driver != "local" {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("volume driver {driver:?} is not known: only local is"),
        ));
    }
    if body["DriverOpts"]
        .as_object()
        .is_some_and(|o| !o.is_empty())
    {
        return Err(error(
            StatusCode::NOT_IMPLEMENTED,
            "volume DriverOpts are not supported by containerization's Docker API yet",
        ));
    }
    let labels = super::containers::labels_of(&body["Labels"])?;
    let name = match body["Name"].as_str().filter(|n| !n.is_empty()) {
        Some(name) => name.to_owned(),
        None => super::exec::new_id()?,
    };
    let volume = service
        .manager
        .volumes()
        .create_with_labels(&name, labels)
        .map_err(|e| from_error(&e.into()))?;
    Ok(json(StatusCode::CREATED, &shape(service, &volume)))
}

/// `GET /volumes`.
pub(crate) fn list(service: &Service) -> Answer {
    let volumes = service
        .manager
        .volumes()
        .list()
        .map_err(|e| from_error(&e.into()))?;
    let shown: Vec<Value> = volumes.iter().map(|v| shape(service, v)).collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "Volumes": shown, "Warnings": [] }),
    ))
}

/// `GET /volumes/{name}`.
pub(crate) fn inspect(service: &Service, name: &str) -> Answer {
    let volume = service
        .manager
        .volumes()
        .get(name)
        .map_err(|_| not_found(name))?
        .ok_or_else(|| not_found(name))?;
    Ok(json(StatusCode::OK, &shape(service, &volume)))
}

/// `DELETE /volumes/{name}`: refused (409) while a container uses it.
pub(crate) fn remove(service: &Service, name: &str) -> Answer {
    let exists = service.manager.volumes().get(name).ok().flatten().is_some();
    if !exists {
        return Err(not_found(name));
    }
    service.manager.remove_volume(name).map_err(|e| match e {
        containerization::Error::InvalidOption { detail, .. } => {
            error(StatusCode::CONFLICT, detail)
        }
        e => from_error(&e.into()),
    })?;
    Ok(nothing(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune`.
pub(crate) fn prune(service: &Service) -> Answer {
    let removed = service
        .manager
        .prune_volumes()
        .map_err(|e| from_error(&e.into()))?;
    Ok(json(
        StatusCode::OK,
        &json!({ "VolumesDeleted": removed, "SpaceReclaimed": 0 }),
    ))
}
