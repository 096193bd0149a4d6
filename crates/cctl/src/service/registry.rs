//! Images from and to registries: create (a pull) and push, their
//! progress streamed as Docker's JSON lines, with the client's credential
//! from the `X-Registry-Auth` header when it sends one (else the store's:
//! `cctl login`, Docker's `config.json`).

use std::future::Future;

use base64::Engine as _;
use bytes::Bytes;
use containerization_oci::progress::{ProgressEvent, ProgressSink};
use containerization_oci::registry::Credential;
use containerization_oci::store::ImageStore;
use containerization_oci::{Platform, Reference};
use hyper::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Service;
use super::body::{Answer, ApiError, error, from_error, streamed};
use super::query::Query;

/// Docker's short form of a digest: 12 hex digits.
fn short(digest: &containerization_oci::Digest) -> String {
    digest.hex().chars().take(12).collect()
}

fn line(value: &Value) -> Bytes {
    Bytes::from(format!("{value}\n"))
}

/// An error line, as Docker ends a failed pull or push.
fn failed(message: &str) -> Bytes {
    line(&json!({ "errorDetail": { "message": message }, "error": message }))
}

/// The credential in `X-Registry-Auth` (base64url of Docker's
/// `AuthConfig`: `username` and `password`, or `identitytoken`), if the
/// client sent one; the CLI sends `{}` when it has none.
pub(crate) fn given_credential(headers: &HeaderMap) -> Result<Option<Credential>, ApiError> {
    let Some(value) = headers.get("X-Registry-Auth") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |why: String| error(StatusCode::BAD_REQUEST, format!("X-Registry-Auth: {why}"));
    // Docker's clients encode it URL-safe, some with padding, some not.
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let auth: Value =
        serde_json::from_slice(&decoded).map_err(|e| bad(format!("not JSON: {e}")))?;
    let field = |name: &str| auth[name].as_str().filter(|v| !v.is_empty());
    if let Some(token) = field("identitytoken") {
        return Ok(Some(Credential {
            username: "<token>".to_owned(),
            password: token.to_owned(),
        }));
    }
    match (field("username"), field("password")) {
        (Some(username), Some(password)) => Ok(Some(Credential {
            username: username.to_owned(),
            password: password.to_owned(),
        })),
        (None, None) => Ok(None),
        _ => Err(bad("a username needs a password".to_owned())),
    }
}

/// Progress events as Docker's lines: a pull's (`Pulling fs layer`,
/// `Downloading`, `Pull complete`) or a push's (`Preparing`, `Pushing`,
/// `Pushed`). A slow client loses progress lines, never the transfer.
fn progress(sender: &mpsc::Sender<Bytes>, pushing: bool) -> ProgressSink {
    let events = sender.clone();
    std::sync::Arc::new(move |event: &ProgressEvent| {
        let value = match (event, pushing) {
            (ProgressEvent::Started { digest, .. }, false) => {
                json!({ "status": "Pulling fs layer", "id": short(digest) })
            }
            (ProgressEvent::Started { digest, .. }, true) => {
                json!({ "status": "Preparing", "id": short(digest) })
            }
            (ProgressEvent::Advanced { digest, done }, pushing) => json!({
                "status": if pushing { "Pushing" } else { "Downloading" },
                "progressDetail": { "current": done },
                "id": short(digest),
            }),
            (ProgressEvent::Skipped { digest, .. }, false) => {
                json!({ "status": "Already exists", "id": short(digest) })
            }
            (ProgressEvent::Skipped { digest, .. }, true) => {
                json!({ "status": "Layer already exists", "id": short(digest) })
            }
            (ProgressEvent::Finished { digest }, false) => {
                json!({ "status": "Pull complete", "id": short(digest) })
            }
            (ProgressEvent::Finished { digest }, true) => {
                json!({ "status": "Pushed", "id": short(digest) })
            }
        };
        let _ = events.try_send(line(&value));
    })
}

/// Runs `work` on a thread of its own (a transfer's future holds the store
/// across awaits and is not `Send`), feeding the response's lines.
fn on_own_thread<F, Fut>(sender: mpsc::Sender<Bytes>, work: F)
where
    F: FnOnce(mpsc::Sender<Bytes>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(work(sender)),
            Err(e) => {
                let _ = sender.blocking_send(failed(&format!("cannot start: {e}")));
            }
        }
    });
}

/// A registry client for `reference` with the given credential, if any.
fn client(
    service: &Service,
    reference: &Reference,
    given: Option<Credential>,
    sink: ProgressSink,
) -> Result<containerization_oci::registry::RegistryClient, ApiError> {
    crate::image::client_with(
        &service.root,
        &crate::image::RegistryOptions::default(),
        reference,
        Some(sink),
        given,
    )
    .map_err(|e| from_error(&e))
}

/// `POST /images/create?fromImage=&tag=`: pulls for this host's platform.
/// Importing (`fromSrc`) is not built.
pub(crate) async fn pull(service: &Service, query: &Query, headers: &HeaderMap) -> Answer {
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
    let given = given_credential(headers)?;
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let (sender, response) = streamed(StatusCode::OK, "application/json");
    let client = client(service, &reference, given, progress(&sender, false))?;
    let events = service.events.clone();
    on_own_thread(sender, move |sender| async move {
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
                let name = reference.to_string();
                events.publish(super::events::image_event("pull", &name, &name));
                line(
                    &json!({ "status": format!("Status: Downloaded newer image for {reference}") }),
                )
            }
            Err(e) => failed(&e.to_string()),
        };
        let _ = sender.send(last).await;
    });
    Ok(response)
}

/// `POST /images/{name}/push?tag=`: pushes `name:tag` to its registry, or
/// every tag of repository `name` in the store when no tag is given.
pub(crate) async fn push(
    service: &Service,
    name: &str,
    query: &Query,
    headers: &HeaderMap,
) -> Answer {
    let store = ImageStore::open(service.root.path()).map_err(|e| from_error(&e.into()))?;
    let repository: Reference = name
        .parse()
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("{name:?}: {e}")))?;
    let names: Vec<String> = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => vec![
            repository
                .with_tag(tag)
                .map_err(|e| error(StatusCode::BAD_REQUEST, format!("tag {tag:?}: {e}")))?
                .to_string(),
        ],
        None => store
            .list()
            .map_err(|e| from_error(&e.into()))?
            .into_iter()
            .map(|image| image.name)
            .filter(|stored| {
                stored
                    .parse::<Reference>()
                    .is_ok_and(|r| r.name() == repository.name() && r.tag().is_some())
            })
            .collect(),
    };
    let missing = names.iter().find(|n| store.get(n).is_err());
    if names.is_empty() || missing.is_some() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!(
                "An image does not exist locally with the tag: {}",
                missing.map_or(name, String::as_str)
            ),
        ));
    }
    let given = given_credential(headers)?;
    let (sender, response) = streamed(StatusCode::OK, "application/json");
    let client = client(service, &repository, given, progress(&sender, true))?;
    let events = service.events.clone();
    on_own_thread(sender, move |sender| async move {
        let first = json!({
            "status": format!("The push refers to repository [{}]", repository.name()),
        });
        let _ = sender.send(line(&first)).await;
        for stored in names {
            let Ok(destination) = stored.parse::<Reference>() else {
                continue;
            };
            let tag = destination.tag().unwrap_or("latest").to_owned();
            match client.push(&store, &stored, &destination).await {
                Ok(digest) => {
                    events.publish(super::events::image_event("push", &stored, &stored));
                    let size = store.get(&stored).map_or(0, |i| i.descriptor.size());
                    let done = [
                        json!({ "status": format!("{tag}: digest: {digest} size: {size}") }),
                        json!({
                            "progressDetail": {},
                            "aux": { "Tag": tag, "Digest": digest.to_string(), "Size": size },
                        }),
                    ];
                    for value in &done {
                        let _ = sender.send(line(value)).await;
                    }
                }
                Err(e) => {
                    let _ = sender.send(failed(&e.to_string())).await;
                    return;
                }
            }
        }
    });
    Ok(response)
}

/// `POST /auth` (`docker login`): checks `{"username", "password",
/// "serveraddress"}` with the registry. Nothing is stored here: the client
/// keeps the credential and sends it with each pull and push.
pub(crate) async fn auth(
    service: &Service,
    request: hyper::Request<hyper::body::Incoming>,
) -> Answer {
    let body = super::body::read_json(request).await?;
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let server = field("serveraddress");
    let server = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .filter(|host| !host.is_empty() && *host != "index.docker.io")
        .unwrap_or(containerization_oci::DEFAULT_REGISTRY)
        .to_owned();
    let reference: Reference = format!("{server}/login/check").parse().map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("serveraddress {server:?}: {e}"),
        )
    })?;
    let credential = Credential {
        username: field("username"),
        password: field("password"),
    };
    let client = crate::image::client_with(
        &service.root,
        &crate::image::RegistryOptions::default(),
        &reference,
        None,
        Some(credential),
    )
    .map_err(|e| from_error(&e))?;
    let checked = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime
            .block_on(client.ping(reference.registry(), reference.api_host()))
            .map_err(std::io::Error::other)
    })
    .await
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    match checked {
        Ok(_) => Ok(super::body::json(
            StatusCode::OK,
            &json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
        )),
        Err(e) => Err(error(
            StatusCode::UNAUTHORIZED,
            format!("login to {server} failed: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("X-Registry-Auth", value.parse().unwrap());
        headers
    }

    #[test]
    fn registry_auth_is_read_as_dockers_clients_encode_it() {
        let encode = |json: &str| base64::engine::general_purpose::URL_SAFE.encode(json);
        assert_eq!(given_credential(&HeaderMap::new()).unwrap(), None);
        assert_eq!(given_credential(&headers(&encode("{}"))).unwrap(), None);
        let given = given_credential(&headers(&encode(
            r#"{"username":"u","password":"p?>","serveraddress":"r:5000"}"#,
        )))
        .unwrap()
        .unwrap();
        assert_eq!(
            (given.username.as_str(), given.password.as_str()),
            ("u", "p?>")
        );
        let token = given_credential(&headers(&encode(r#"{"identitytoken":"t"}"#)))
            .unwrap()
            .unwrap();
        assert_eq!(token.password, "t");
        let error = given_credential(&headers(&encode(r#"{"username":"u"}"#))).unwrap_err();
        assert!(error.message.contains("needs a password"), "{error:?}");
        assert!(given_credential(&headers("!!!")).is_err());
    }
}
