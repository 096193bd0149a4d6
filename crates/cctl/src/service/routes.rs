//! The routes of Docker's Engine API 1.41, to tell a request this service
//! does not serve yet (501, naming it) from one no Docker daemon serves
//! (404 `page not found`, as Docker's router answers).

use hyper::Method;

/// Docker 1.41's routes: a method and the path's segments, `{}` for one
/// segment of a name or id and `{*}` for an image's or plugin's name, which
/// may hold `/`.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "_ping"),
    ("HEAD", "_ping"),
    ("POST", "auth"),
    ("GET", "info"),
    ("GET", "version"),
    ("GET", "events"),
    ("GET", "system/df"),
    ("POST", "session"),
    ("POST", "build"),
    ("POST", "build/prune"),
    ("POST", "commit"),
    ("GET", "distribution/{*}/json"),
    ("GET", "containers/json"),
    ("POST", "containers/create"),
    ("POST", "containers/prune"),
    ("GET", "containers/{}/json"),
    ("GET", "containers/{}/top"),
    ("GET", "containers/{}/logs"),
    ("GET", "containers/{}/changes"),
    ("GET", "containers/{}/export"),
    ("GET", "containers/{}/stats"),
    ("POST", "containers/{}/resize"),
    ("POST", "containers/{}/start"),
    ("POST", "containers/{}/stop"),
    ("POST", "containers/{}/restart"),
    ("POST", "containers/{}/kill"),
    ("POST", "containers/{}/update"),
    ("POST", "containers/{}/rename"),
    ("POST", "containers/{}/pause"),
    ("POST", "containers/{}/unpause"),
    ("POST", "containers/{}/attach"),
    ("GET", "containers/{}/attach/ws"),
    ("POST", "containers/{}/wait"),
    ("DELETE", "containers/{}"),
    ("HEAD", "containers/{}/archive"),
    ("GET", "containers/{}/archive"),
    ("PUT", "containers/{}/archive"),
    ("POST", "containers/{}/exec"),
    ("POST", "exec/{}/start"),
    ("POST", "exec/{}/resize"),
    ("GET", "exec/{}/json"),
    ("GET", "images/json"),
    ("POST", "images/create"),
    ("POST", "images/load"),
    ("POST", "images/prune"),
    ("GET", "images/search"),
    ("GET", "images/get"),
    ("GET", "images/{*}/json"),
    ("GET", "images/{*}/history"),
    ("GET", "images/{*}/get"),
    ("POST", "images/{*}/push"),
    ("POST", "images/{*}/tag"),
    ("DELETE", "images/{*}"),
    ("GET", "networks"),
    ("POST", "networks/create"),
    ("POST", "networks/prune"),
    ("GET", "networks/{}"),
    ("DELETE", "networks/{}"),
    ("POST", "networks/{}/connect"),
    ("POST", "networks/{}/disconnect"),
    ("GET", "volumes"),
    ("POST", "volumes/create"),
    ("POST", "volumes/prune"),
    ("GET", "volumes/{}"),
    ("DELETE", "volumes/{}"),
    ("GET", "swarm"),
    ("POST", "swarm/init"),
    ("POST", "swarm/join"),
    ("POST", "swarm/leave"),
    ("POST", "swarm/update"),
    ("GET", "swarm/unlockkey"),
    ("POST", "swarm/unlock"),
    ("GET", "nodes"),
    ("GET", "nodes/{}"),
    ("DELETE", "nodes/{}"),
    ("POST", "nodes/{}/update"),
    ("GET", "services"),
    ("POST", "services/create"),
    ("GET", "services/{}"),
    ("DELETE", "services/{}"),
    ("POST", "services/{}/update"),
    ("GET", "services/{}/logs"),
    ("GET", "tasks"),
    ("GET", "tasks/{}"),
    ("GET", "tasks/{}/logs"),
    ("GET", "secrets"),
    ("POST", "secrets/create"),
    ("GET", "secrets/{}"),
    ("DELETE", "secrets/{}"),
    ("POST", "secrets/{}/update"),
    ("GET", "configs"),
    ("POST", "configs/create"),
    ("GET", "configs/{}"),
    ("DELETE", "configs/{}"),
    ("POST", "configs/{}/update"),
    ("GET", "plugins"),
    ("GET", "plugins/privileges"),
    ("POST", "plugins/pull"),
    ("POST", "plugins/create"),
    ("GET", "plugins/{*}/json"),
    ("DELETE", "plugins/{*}"),
    ("POST", "plugins/{*}/enable"),
    ("POST", "plugins/{*}/disable"),
    ("POST", "plugins/{*}/upgrade"),
    ("POST", "plugins/{*}/push"),
    ("POST", "plugins/{*}/set"),
];

/// Whether Docker's API 1.41 has `method` on the path of `segments` (its
/// version prefix gone).
pub(crate) fn is_dockers(method: &Method, segments: &[&str]) -> bool {
    ROUTES.iter().any(|(verb, pattern)| {
        *verb == method.as_str() && matches(&pattern.split('/').collect::<Vec<_>>(), segments)
    })
}

/// Whether `segments` fit `pattern` (`{}` one segment, `{*}` one or more).
fn matches(pattern: &[&str], segments: &[&str]) -> bool {
    match (pattern.split_first(), segments.split_first()) {
        (None, None) => true,
        (Some((&"{*}", rest)), Some(_)) => {
            (1..=segments.len()).any(|taken| matches(rest, &segments[taken..]))
        }
        (Some((&"{}", rest)), Some((_, others))) => matches(rest, others),
        (Some((word, rest)), Some((segment, others))) => word == segment && matches(rest, others),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_routes_are_told_from_others() {
        assert!(is_dockers(&Method::GET, &["containers", "abc", "json"]));
        assert!(is_dockers(&Method::POST, &["images", "a", "b", "push"]));
        assert!(is_dockers(
            &Method::DELETE,
            &["images", "reg:5000", "a", "b"]
        ));
        assert!(is_dockers(
            &Method::GET,
            &["containers", "c", "attach", "ws"]
        ));
        assert!(!is_dockers(&Method::GET, &["containers", "c", "bogus"]));
        assert!(!is_dockers(&Method::DELETE, &["containers", "json", "x"]));
        assert!(!is_dockers(&Method::GET, &["nothing"]));
        assert!(!is_dockers(&Method::GET, &[]));
        assert!(!is_dockers(&Method::POST, &["images", "push"]));
    }
}
