//! Starts an anonymous test registry, pushes a test image into it, prints the
//! image's reference and the registry's process id, and waits to be killed.
//! Benchmarks use it: `serve-image debian`, `serve-image busybox` or `serve-image multiplatform`; `make
//! demo` names the repository too: `serve-image busybox demo/busybox:latest`.

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
    let registry = Registry::anonymous()?;
    let reference = registry.push(&image, &repository)?;
    let mut stdout = std::io::stdout();
    // The caller reads these lines; if they cannot be written, nobody listens.
    let _ = writeln!(stdout, "{reference} {}", registry.pid()).and_then(|()| stdout.flush());
    loop {
        std::thread::park();
    }
}
