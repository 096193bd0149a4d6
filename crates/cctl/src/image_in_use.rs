//! `cctl image rm` refuses an image that containers were made from, as
//! Docker and Podman do, unless `-f`: the check reads the containers'
//! records, which name the image as the store does and its manifest digest.
//! Another name for the same image keeps it, so removing one of several
//! names is allowed.

use containerization::{ContainerStore, StateRoot};
use containerization_oci::store::ImageStore;

/// Fails when removing `name` from `store` would remove an image that a
/// container under `root` was made from, naming the containers.
pub fn refuse_if_in_use(root: &StateRoot, store: &ImageStore, name: &str) -> anyhow::Result<()> {
    // An unknown name is left to `untag` to report.
    let Ok(image) = store.get(name) else {
        return Ok(());
    };
    let digest = image.descriptor.digest().to_string();
    let other_names = store
        .list()?
        .iter()
        .any(|other| other.name != name && other.descriptor.digest().to_string() == digest);
    if other_names {
        return Ok(());
    }
    let containers = ContainerStore::new(root.path().join("containers"), root.run_dir());
    let users = containers.using_image(name, &digest)?;
    if users.is_empty() {
        return Ok(());
    }
    let users: Vec<String> = users
        .iter()
        .map(|(id, container)| format!("{} ({container})", id.as_str()))
        .collect();
    anyhow::bail!(
        "cannot remove {name}: image is in use by container {}; remove the container first, \
         or remove the image's name anyway with `cctl image rm -f {name}`",
        users.join(", ")
    )
}
