//! Tag listing (following `Link` pages) and manifest deletion.

use reqwest::header::HeaderMap;
use reqwest::{Method, Response, StatusCode};

use crate::registry::client::{RegistryClient, status_error};
use crate::registry::push::absolute;
use crate::{Error, Reference, Result};

impl RegistryClient {
    /// Every tag of `reference`'s repository, following `Link` pages.
    pub async fn list_tags(&self, reference: &Reference) -> Result<Vec<String>> {
        let base = self.base(reference.api_host()).await?;
        let target = crate::registry::pull::target(reference, "pull");
        let mut url = format!("{base}/v2/{}/tags/list?n=100", reference.repository());
        let mut tags = Vec::new();
        loop {
            let response = self
                .request(&target, Method::GET, &url, HeaderMap::new(), None)
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Err(Error::ManifestUnknown {
                    what: "repository".to_owned(),
                    repository: reference.name(),
                });
            }
            if !response.status().is_success() {
                return Err(status_error("GET", &url, response).await);
            }
            let next = next_link(&response).map(|l| absolute(&base, &l));
            let body = crate::limits::read_body(
                response,
                crate::limits::MAX_TAG_LIST_BYTES,
                "the tag list",
                &url,
            )
            .await?;
            let json: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| Error::InvalidDocument {
                    what: url.clone(),
                    kind: "tag list",
                    reason: e.to_string(),
                })?;
            tags.extend(
                json["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_owned)),
            );
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
    }

    /// Deletes the manifest `reference` pins by digest.
    pub async fn delete_manifest(&self, reference: &Reference) -> Result<()> {
        let Some(digest) = reference.digest() else {
            return Err(Error::InvalidReference {
                input: reference.to_string(),
                reason: "deleting a manifest needs its digest (name@sha256:…)".to_owned(),
            });
        };
        let base = self.base(reference.api_host()).await?;
        let target = crate::registry::pull::target(reference, "pull,push,delete");
        let url = format!("{base}/v2/{}/manifests/{digest}", reference.repository());
        let response = self
            .request(&target, Method::DELETE, &url, HeaderMap::new(), None)
            .await?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::OK => Ok(()),
            StatusCode::NOT_FOUND => Err(Error::ManifestUnknown {
                what: format!("manifest {digest}"),
                repository: reference.name(),
            }),
            _ => Err(status_error("DELETE", &url, response).await),
        }
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(response: &Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}
