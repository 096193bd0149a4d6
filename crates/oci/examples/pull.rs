//! `pull STATE_ROOT REFERENCE`: pulls an image for this machine's platform
//! into the stores under STATE_ROOT, as `cctl image pull` does. The benchmark
//! in `bench/oci` runs it.

use containerization_oci::registry::{ClientConfig, RegistryClient};
use containerization_oci::store::ImageStore;
use containerization_oci::{Platform, Reference};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(reference)) = (args.next(), args.next()) else {
        return Err("usage: pull STATE_ROOT REFERENCE".into());
    };
    let store = ImageStore::open(std::path::Path::new(&root))?;
    let config = ClientConfig {
        // As `cctl image pull`: diff_ids are checked where layers are
        // decompressed; CZ_CHECK_DIFF_IDS=1 checks them at pull time too.
        verify_diff_ids: std::env::var_os("CZ_CHECK_DIFF_IDS").is_some(),
        ..ClientConfig::default()
    };
    let client = RegistryClient::new(config)?;
    let reference: Reference = reference.parse()?;
    let image = client.pull(&store, &reference, &Platform::host()).await?;
    println!("{} {}", image.name, image.digest()?);
    Ok(())
}
