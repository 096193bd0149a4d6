//! Building one base image: an ext4 file system with a journal made from an
//! image's layers, sized for a container to write into, read-only on disk,
//! and put in place only once it is whole.
//!
//! The size is virtual: the ext4 writer leaves unused blocks and inode
//! tables as holes, so a base of 4 GiB with busybox in it takes about as
//! much disk and time as one of 8 MiB (measured: 2.4 MiB allocated and
//! 9 ms for 4 GiB against 2.1 MiB and 9 ms for 8 MiB). Layers are
//! compressed and their unpacked size is unknown until they are unpacked,
//! so the size is first guessed from the blob sizes; a guess that proves
//! too small is corrected and the image built again.
//!
//! Every layer is read through [`ContentStore::open_layer`], which checks
//! the blob's digest and the layer's `diff_id` on another core while the
//! ext4 writer works: a base is published only if every layer's verdict is
//! good, so nothing built from a damaged or lying layer is ever used.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use containerization_ext4::{FormatOptions, Formatter, Summary};
use containerization_oci::layer::{CheckedLayer, StoredLayer};
use containerization_oci::store::{BlobFollower, ContentStore};
use rustix::fs::RenameFlags;
use rustix::io::Errno;

use crate::Error;

/// The smallest base: what a container can count on writing even when its
/// image is tiny.
const MIN_SIZE: u64 = 4 << 30;
/// Free space a base keeps beyond its content.
const FREE_SPACE: u64 = 1 << 30;
/// How many times larger than its blob a layer is assumed to unpack to
/// (gzip and zstd tar layers are typically 2 to 4 times smaller).
const UNPACK_RATIO: u64 = 5;
/// Builds tried before a base is kept as it is.
const ATTEMPTS: usize = 4;
/// Sizes are whole GiB.
const GIB: u64 = 1 << 30;

/// The layers of one image, lowest first, and the store that holds them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layers<'a> {
    pub(crate) content: &'a ContentStore,
    pub(crate) layers: &'a [StoredLayer],
    /// Read as a pull downloads them, when given (see
    /// [`ContentStore::open_layer_following`]); else from the store.
    pub(crate) follow: Option<&'a BlobFollower>,
}

/// Builds the base for `image` from `layers` at `target`, going through
/// `partial`, which is replaced if it exists. The caller holds the build
/// lock. On error neither file is left.
pub(crate) fn build(
    target: &Path,
    partial: &Path,
    layers: Layers<'_>,
    image: &str,
) -> Result<Summary, Error> {
    let built = build_partial(partial, layers, image).and_then(|summary| {
        publish(partial, target, image)?;
        Ok(summary)
    });
    if built.is_err() {
        match std::fs::remove_file(partial) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %partial.display(), error = %e, "cannot remove a half-built base");
            }
        }
    }
    built
}

/// Writes the image to `partial`, growing it until the content fits with
/// [`FREE_SPACE`] to spare.
fn build_partial(partial: &Path, layers: Layers<'_>, image: &str) -> Result<Summary, Error> {
    let compressed = layers
        .layers
        .iter()
        .fold(0u64, |sum, layer| sum.saturating_add(layer.size));
    let mut size = whole_gib(
        compressed
            .saturating_mul(UNPACK_RATIO)
            .saturating_add(FREE_SPACE),
    );
    for attempt in 1..=ATTEMPTS {
        let started = std::time::Instant::now();
        match build_once(partial, layers, image, size) {
            Ok(summary) => {
                let used = summary.blocks_used * summary.block_size;
                let free = summary.size.saturating_sub(used);
                tracing::info!(
                    image,
                    size_mib = summary.size >> 20,
                    free_mib = free >> 20,
                    elapsed_ms = started.elapsed().as_millis(),
                    "built a base root file system"
                );
                if free >= FREE_SPACE || attempt == ATTEMPTS {
                    return Ok(summary);
                }
                size = whole_gib(used + FREE_SPACE + GIB);
            }
            Err(Attempt::TooSmall) if attempt < ATTEMPTS => size = size.saturating_mul(2),
            Err(Attempt::TooSmall) => {
                return Err(Error::Rootfs {
                    image: image.to_owned(),
                    detail: format!(
                        "its layers do not fit in {} GiB; the image is larger than this \
                         cache builds",
                        size >> 30
                    ),
                });
            }
            Err(Attempt::Failed(error)) => return Err(error),
        }
        tracing::debug!(
            image,
            size_mib = size >> 20,
            "the base was too small; building it again"
        );
    }
    Err(Error::Rootfs {
        image: image.to_owned(),
        detail: "no base could be built".to_owned(),
    })
}

/// Why one build did not make an image.
enum Attempt {
    /// The content needs more blocks or inodes than `size` holds.
    TooSmall,
    /// Anything else: reported as it is.
    Failed(Error),
}

/// One build of `size` bytes into `partial`.
fn build_once(
    partial: &Path,
    layers: Layers<'_>,
    image: &str,
    size: u64,
) -> Result<Summary, Attempt> {
    let options = FormatOptions {
        size: Some(size),
        journal: true,
        label: "rootfs".to_owned(),
        ..FormatOptions::default()
    };
    // `action` says what failed, `advice` what to do about it. The host's
    // disk filling up is said as such, whatever was being done.
    let folder = partial.parent().unwrap_or(partial).display().to_string();
    let failed = |action: String, advice: &'static str| {
        let folder = folder.clone();
        move |error: containerization_ext4::Error| match error {
            containerization_ext4::Error::OutOfSpace { .. }
            | containerization_ext4::Error::OutOfInodes { .. } => Attempt::TooSmall,
            containerization_ext4::Error::Io { ref source, .. }
                if crate::state_file::is_out_of_space(source) =>
            {
                Attempt::Failed(Error::Rootfs {
                    image: image.to_owned(),
                    detail: format!(
                        "{action}: {error}; the disk holding {folder} is full: free space \
                         (`cctl system prune` removes what nothing uses) and try again"
                    ),
                })
            }
            error => Attempt::Failed(Error::Rootfs {
                image: image.to_owned(),
                detail: format!("{action}: {error}{advice}"),
            }),
        }
    };
    let refused = |number: usize| {
        move |error: containerization_oci::Error| {
            Attempt::Failed(Error::Rootfs {
                image: image.to_owned(),
                detail: format!("layer {number} is refused: {error}"),
            })
        }
    };
    let open = |number: usize| -> Result<Option<CheckedLayer>, Attempt> {
        layers
            .layers
            .get(number)
            .map(|layer| match layers.follow {
                Some(follower) => Ok(layers.content.open_layer_following(layer, follower)),
                None => layers.content.open_layer(layer),
            })
            .transpose()
            .map_err(refused(number + 1))
    };
    let mut formatter = Formatter::create(partial, options)
        .map_err(failed(format!("cannot create {}", partial.display()), ""))?;
    // The next layer inflates and is checked while this one is written.
    let mut next = open(0)?;
    for (index, layer) in layers.layers.iter().enumerate() {
        let Some(mut reader) = next.take() else { break };
        next = open(index + 1)?;
        let number = index + 1;
        match formatter.unpack_layer(&mut reader) {
            Ok(()) => reader.finish().map_err(refused(number))?,
            Err(error) => {
                let attempt = failed(
                    format!("cannot apply layer {number} ({})", layer.digest),
                    "",
                )(error);
                // A damaged blob makes the writer fail first: say so if it is.
                if let Attempt::Failed(_) = attempt {
                    reader.check_blob().map_err(refused(number))?;
                }
                return Err(attempt);
            }
        }
    }
    formatter
        .finish()
        .map_err(failed(format!("cannot write {}", partial.display()), ""))
}

/// Makes the whole image at `partial` read-only and moves it to `target`,
/// never over an existing file: a base in use must not change under its
/// overlays. If another build put one there first, that one is kept.
pub(crate) fn publish(partial: &Path, target: &Path, image: &str) -> Result<(), Error> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::set_permissions(partial, std::fs::Permissions::from_mode(0o444))
        .map_err(io_error(partial))?;
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        partial,
        rustix::fs::CWD,
        target,
        RenameFlags::NOREPLACE,
    ) {
        Ok(()) => {}
        Err(Errno::EXIST) => {
            tracing::debug!(image, path = %target.display(), "another build finished first; keeping its base");
            std::fs::remove_file(partial).map_err(io_error(partial))?;
        }
        Err(errno) => return Err(io_error(target)(errno.into())),
    }
    // The rename reaches the disk with the folder.
    if let Some(dir) = target.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
    }
    Ok(())
}

/// `bytes` rounded up to whole GiB, and at least [`MIN_SIZE`].
fn whole_gib(bytes: u64) -> u64 {
    bytes.div_ceil(GIB).saturating_mul(GIB).max(MIN_SIZE)
}

#[cfg(test)]
mod tests {
    use super::whole_gib;

    #[test]
    fn sizes_are_whole_gib_and_at_least_the_minimum() {
        assert_eq!(whole_gib(0), 4 << 30);
        assert_eq!(whole_gib((4 << 30) + 1), 5 << 30);
        assert_eq!(whole_gib(7 << 30), 7 << 30);
    }
}
