//! Starts an anonymous test registry, pushes a test image into it, prints the
//! image's reference and the registry's process id, and waits to be killed.
//! Benchmarks use it: `serve-image debian`, `serve-image busybox` or `serve-image multiplatform`; `make
//! demo` names the repository too: `serve-image busybox demo/busybox:latest`.
//! `SERVE_IMAGE_ADDRESS=10.0.0.1` makes the registry listen there instead of
//! on 127.0.0.1 (a benchmark's shaped link).

use std::io::Write;

use containerization_testkit::{Error, Fixture, Registry, debian_image, fixture};

fn main() -> Result<(), Error> {
    let which = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "busybox".to_owned());
    let image = match which.as_str() {
        "debian" => debian_image()?,
        "busybox" => fixture(Fixture::Busybox)?,
        "layered" => fixture(Fixture::Layered)?,
        "multiplatform" => fixture(Fixture::MultiPlatform)?,
        other => {
            return Err(Error::Unexpected(format!(
                "no image called {other}; try debian, busybox, layered or multiplatform"
            )));
        }
    };
    let repository = std::env::args()
        .nth(2)
        .unwrap_or_else(|| format!("bench/{which}:1"));
    // SERVE_IMAGE_ADDRESS: listen there instead of on 127.0.0.1.
    let mut builder = Registry::builder();
    if let Ok(address) = std::env::var("SERVE_IMAGE_ADDRESS") {
        let address = address.parse().map_err(|e| {
            Error::Unexpected(format!(
                "SERVE_IMAGE_ADDRESS={address} is not an IPv4 address: {e}"
            ))
        })?;
        builder = builder.listen_on(address);
    }
    let registry = builder.start()?;
    let reference = registry.push(&image, &repository)?;
    let mut stdout = std::io::stdout();
    // The caller reads these lines; if they cannot be written, nobody listens.
    let _ = writeln!(stdout, "{reference} {}", registry.pid()).and_then(|()| stdout.flush());
    loop {
        std::thread::park();
    }
}
