//! `unpack STATE_ROOT NAME TARGET`: unpacks image NAME from the stores under
//! STATE_ROOT into TARGET, checking
//! each layer against the config's diff_ids, as `cctl image pull --unpack` does. The benchmark
//! in `bench/oci` runs it.

use containerization_oci::Platform;
use containerization_oci::layer::unpack_resolved;
use containerization_oci::store::ImageStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, name, target] = args.as_slice() else {
        return Err("usage: unpack STATE_ROOT NAME TARGET".into());
    };
    let store = ImageStore::open(std::path::Path::new(root))?;
    let resolved = store.resolve(name, &Platform::host())?;
    unpack_resolved(
        store.content(),
        &resolved,
        std::path::Path::new(target),
        &Default::default(),
    )?;
    Ok(())
}
