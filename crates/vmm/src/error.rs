//! The one error type of this crate.

use std::path::PathBuf;

/// Maps an I/O error on `path` to [`VmmError::Io`], for `map_err`.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> VmmError + use<> {
    let path = path.to_path_buf();
    move |source| VmmError::Io { path, source }
}

/// Everything that can go wrong in `containerization-vmm`.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A kernel catalogue entry lacks its kernel image.
    #[error(
        "kernel catalogue entry {dir} has no kernel image: expected one of {expected}; \
         run scripts/setup to install the Debian cloud kernel"
    )]
    MissingKernelImage {
        /// The entry's folder.
        dir: PathBuf,
        /// The file names that were looked for.
        expected: String,
    },
    /// A file that should be a kernel image is neither a bzImage nor an ELF `vmlinux`.
    #[error("{path} is not a kernel image: it is neither a bzImage nor an ELF vmlinux")]
    NotAKernelImage {
        /// The file.
        path: PathBuf,
    },
    /// No catalogue entry has the requested name.
    #[error("no kernel named {name:?} in {catalogue}; the catalogue has: {available}")]
    UnknownKernel {
        /// The name asked for.
        name: String,
        /// The catalogue folder.
        catalogue: PathBuf,
        /// The names it holds, comma-separated, or "nothing".
        available: String,
    },
    /// The VM configuration is not valid.
    #[error("invalid VM configuration: {message}")]
    InvalidConfig {
        /// What is wrong.
        message: String,
    },
    /// A program could not be started.
    #[error("cannot start {program}: {source}; run scripts/setup")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// QEMU could not be confined: its mount namespace (or its user) could
    /// not be set up between fork and exec.
    #[error(
        "cannot start {program} in its own mount namespace{}: {source}; \
         CZ_QEMU_JAIL=off starts it unconfined",
        if *user { " as its own user" } else { "" }
    )]
    Confine {
        /// The program.
        program: PathBuf,
        /// Whether it was also to become its unprivileged user.
        user: bool,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The vsock helper exited or never created its socket.
    #[error("{program} did not create its socket within 5 s")]
    HelperFailed {
        /// The helper.
        program: PathBuf,
    },
    /// The static vminitd binary is missing.
    #[error(
        "cannot read vminitd at {path}: {source}; build it with `cargo build --release -p vminitd --target x86_64-unknown-linux-musl` (or without --release, for a debug build)"
    )]
    MissingVminitd {
        /// Where it was looked for.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// QMP failed.
    #[error("QMP: {message}")]
    Qmp {
        /// What went wrong.
        message: String,
    },
    /// The guest kernel panicked before the agent answered.
    #[error("the guest kernel panicked: {line}\nlast console lines:\n{console}")]
    KernelPanic {
        /// The console line with the panic message.
        line: String,
        /// The console's last lines.
        console: String,
    },
    /// QEMU exited before the agent answered.
    #[error(
        "the VM exited ({status}) before its agent answered\nQEMU said: {stderr}\nlast console lines:\n{console}"
    )]
    GuestExited {
        /// QEMU's exit status.
        status: String,
        /// QEMU's last lines of standard error.
        stderr: String,
        /// The console's last lines.
        console: String,
    },
    /// QEMU cannot confine itself: it was built without seccomp.
    #[error(
        "{qemu} was built without seccomp support and cannot run with -sandbox; \
         install a QEMU built with seccomp (Debian's qemu-system-x86 is), or set \
         CZ_QEMU_SANDBOX=off to run it unconfined"
    )]
    NoSandbox {
        /// The QEMU binary.
        qemu: PathBuf,
    },
    /// The VM's run folder belongs to another user (or is not a folder).
    #[error(
        "VM run folder {path} belongs to uid {owner}, not to this user (uid {user}), or is \
         not a folder: another user may have made it first to reach the VM's sockets; \
         remove it or choose another run folder"
    )]
    RunFolderNotOwned {
        /// The folder.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The user starting the VM.
        user: u32,
    },
    /// The agent did not answer in time.
    #[error("the guest's agent did not answer within {timeout:?}\nlast console lines:\n{console}")]
    NotReady {
        /// How long start waited.
        timeout: std::time::Duration,
        /// The console's last lines.
        console: String,
    },
}
