//! The one error type of this crate.

/// Everything that can go wrong in `containerization`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No state root could be chosen: the user is not root, `CZ_ROOT` is unset,
    /// and neither `XDG_DATA_HOME` nor `HOME` is set.
    #[error(
        "cannot choose a state folder: set CZ_ROOT, or XDG_DATA_HOME or HOME \
         (root uses /var/lib/containerization)"
    )]
    NoStateRoot,
    /// A VM-layer operation failed.
    #[error(transparent)]
    Vmm(#[from] containerization_vmm::VmmError),
}
