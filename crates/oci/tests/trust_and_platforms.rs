//! Registries the user marked insecure (plain HTTP, unchecked TLS), and the
//! amd64-runs-386 switch, against a real docker-registry.

mod common;

use common::{push_fixture, temp_store};
use containerization_oci::registry::{ClientConfig, RegistryClient};
use containerization_oci::{Platform, Reference};
use containerization_testkit::{Fixture, Registry, fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_host_is_reached_over_tls_without_checking_its_certificate() {
    let registry = Registry::tls().expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    let reference = push_fixture(&registry, &image, "demo/busybox:1");
    let platform = Platform::new("linux", "amd64", None);
    let (_dir, store) = temp_store();

    // The test CA is not trusted and the host is not marked insecure.
    let strict = RegistryClient::new(ClientConfig::default()).expect("client");
    strict
        .pull(&store, &reference, &platform)
        .await
        .expect_err("a certificate from an unknown CA is refused");
    assert!(store.list().expect("list").is_empty(), "nothing stored");

    // Marked insecure: the certificate is not checked, and the registry
    // (which speaks only TLS) serves the image.
    let insecure = RegistryClient::new(ClientConfig {
        insecure_hosts: vec![registry.host()],
        ..ClientConfig::default()
    })
    .expect("client");
    let image = insecure
        .pull(&store, &reference, &platform)
        .await
        .expect("pull from an insecure host");
    assert_eq!(image.name, reference.to_string());
}

/// Puts an index into `repository` whose one entry is the busybox image
/// labelled linux/386, and returns the index's reference.
async fn index_of_386_only(registry: &Registry, repository: &str) -> Reference {
    let image = fixture(Fixture::Busybox).expect("fixture");
    let base = push_fixture(registry, &image, &format!("{repository}:base"));
    let client = RegistryClient::new(ClientConfig::default()).expect("client");
    let manifest = client.fetch_manifest(&base).await.expect("manifest");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": manifest.media_type,
            "digest": manifest.digest.to_string(),
            "size": manifest.bytes.len(),
            "platform": {"os": "linux", "architecture": "386"}
        }]
    });
    let url = format!("{}/v2/{repository}/manifests/386", registry.base_url());
    let response = reqwest::Client::new()
        .put(&url)
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .body(index.to_string())
        .send()
        .await
        .expect("PUT index");
    assert_eq!(response.status().as_u16(), 201, "index stored");
    format!("{}/{repository}:386", registry.host())
        .parse()
        .expect("reference")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amd64_host_takes_a_386_image_only_when_asked() {
    let registry = Registry::anonymous().expect("registry");
    let reference = index_of_386_only(&registry, "demo/i386").await;
    let client = RegistryClient::new(ClientConfig::default()).expect("client");
    let (_dir, store) = temp_store();

    let mut amd64 = Platform::new("linux", "amd64", None);
    let error = client
        .pull(&store, &reference, &amd64)
        .await
        .expect_err("386 is not taken unasked");
    assert_eq!(
        error.to_string(),
        "no linux/amd64 image in this index; it has linux/386"
    );
    assert!(store.list().expect("list").is_empty(), "nothing stored");

    amd64.allow_386_on_amd64 = true;
    let image = client
        .pull(&store, &reference, &amd64)
        .await
        .expect("386 taken when asked");
    let resolved = store.resolve(&image.name, &amd64).expect("resolve");
    assert_eq!(
        resolved
            .manifest_descriptor
            .platform()
            .as_ref()
            .map(|p| p.architecture().to_string()),
        Some("386".to_owned())
    );
}

/// A non-loopback IPv4 address of this machine (`ip -4 addr`, scope global).
fn global_ipv4() -> std::net::Ipv4Addr {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next()?.parse().ok())
        .expect("this test needs a non-loopback IPv4 address on this machine")
}

/// Forwards connections to `address:0` (returns the port) to 127.0.0.1:`upstream`.
async fn forward(address: std::net::Ipv4Addr, upstream: u16) -> u16 {
    let listener = tokio::net::TcpListener::bind((address, 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut server) =
                    tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_used_for_a_remote_host_only_when_marked_insecure() {
    let registry = Registry::anonymous().expect("registry");
    let image = fixture(Fixture::Busybox).expect("fixture");
    push_fixture(&registry, &image, "demo/busybox:1");
    let address = global_ipv4();
    let port = forward(address, registry.port()).await;
    let host = format!("{address}:{port}");
    let reference: Reference = format!("{host}/demo/busybox:1").parse().expect("reference");
    let platform = Platform::new("linux", "amd64", None);
    let (_dir, store) = temp_store();

    // Not loopback and not marked: HTTPS only, which this registry lacks.
    let strict = RegistryClient::new(ClientConfig::default()).expect("client");
    strict
        .pull(&store, &reference, &platform)
        .await
        .expect_err("no plain HTTP to a host not marked insecure");
    assert!(store.list().expect("list").is_empty(), "nothing stored");

    let insecure = RegistryClient::new(ClientConfig {
        insecure_hosts: vec![host],
        ..ClientConfig::default()
    })
    .expect("client");
    insecure
        .pull(&store, &reference, &platform)
        .await
        .expect("plain HTTP to a host marked insecure");
}
