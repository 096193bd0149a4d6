//! The first steps of a child's own mount namespace, shared by QEMU's jail
//! and the share helper's export: made between fork and exec, so only
//! async-signal-safe system calls on memory allocated before the fork.

use std::ffi::CStr;

use rustix::mount::{MountFlags, MountPropagationFlags};

/// `nosuid,nodev`: what every mount made for a child carries.
pub(crate) const HARDENED: MountFlags = MountFlags::NOSUID.union(MountFlags::NODEV);

/// Enters a new mount namespace whose mounts never reach the host's, and
/// mounts a `nosuid,nodev,noexec` tmpfs with `options` on `root`.
pub(crate) fn private_with_tmpfs(root: &CStr, options: &CStr) -> std::io::Result<()> {
    // SAFETY: a new mount namespace changes no memory or descriptor this
    // process shares with anything.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)? };
    // Nothing done here may reach the host's namespace.
    rustix::mount::mount_change(
        c"/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )?;
    rustix::mount::mount(
        c"tmpfs",
        root,
        c"tmpfs",
        HARDENED | MountFlags::NOEXEC,
        options,
    )?;
    Ok(())
}
