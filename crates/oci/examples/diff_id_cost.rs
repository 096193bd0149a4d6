//! `diff_id_cost STATE_ROOT NAME`: how much CPU time the checks of a pull
//! cost for image NAME, measured on one thread from blobs already in memory:
//! hashing each compressed layer (its digest) and inflating and hashing it
//! (its diff_id). Prints `compressed_hash_s inflate_s inflate_and_hash_s`.
//! The benchmark in `bench/oci` uses it to show the least time a pull that
//! checks diff_ids can take on this machine, whatever it overlaps.

use std::io::Read;
use std::time::{Duration, Instant};

use containerization_oci::layer::decoder;
use containerization_oci::manifest::descriptor_digest;
use containerization_oci::media_type::{self, Kind};
use containerization_oci::store::ImageStore;
use containerization_oci::{Algorithm, Hasher, Platform};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, name] = args.as_slice() else {
        return Err("usage: diff_id_cost STATE_ROOT NAME".into());
    };
    let store = ImageStore::open(std::path::Path::new(root))?;
    let resolved = store.resolve(name, &Platform::host())?;
    let (mut hash, mut inflate, mut both) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut buffer = vec![0u8; 256 << 10];
    for layer in resolved.manifest.layers() {
        let Kind::Layer(compression) = media_type::kind(layer.media_type().as_ref()) else {
            continue;
        };
        let mut blob = Vec::new();
        std::io::Read::read_to_end(
            &mut store.content().open_blob(&descriptor_digest(layer)?)?,
            &mut blob,
        )?;
        let start = Instant::now();
        let mut hasher = Hasher::new(Algorithm::Sha256);
        hasher.update(&blob);
        let _ = hasher.finish();
        hash += start.elapsed();
        for with_hash in [false, true] {
            let start = Instant::now();
            let mut reader = decoder(compression, &blob[..])?;
            let mut hasher = Hasher::new(Algorithm::Sha256);
            loop {
                let n = reader.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                if with_hash {
                    hasher.update(&buffer[..n]);
                }
            }
            let _ = hasher.finish();
            if with_hash {
                both += start.elapsed();
            } else {
                inflate += start.elapsed();
            }
        }
    }
    println!(
        "{:.3} {:.3} {:.3}",
        hash.as_secs_f64(),
        inflate.as_secs_f64(),
        both.as_secs_f64()
    );
    Ok(())
}
