//! The system-call filter: a default profile in the spirit of Docker's,
//! compiled to BPF by `seccompiler` (pure Rust, no libseccomp).
//!
//! Docker's profile allows a long list and denies the rest; this one denies
//! the same dangerous calls by name and allows the rest, so it needs no table
//! of every call on every architecture. Calls that a granted capability makes
//! legitimate (mount with `CAP_SYS_ADMIN`, ptrace with `CAP_SYS_PTRACE`, ...)
//! are denied only when the bounding set lacks that capability, as Docker
//! does. Denied calls fail with `EPERM`; `clone3` fails with `ENOSYS` so C
//! libraries fall back to `clone`, whose namespace flags the filter can see.
//!
//! A spec without `linux.seccomp` gets this profile; a spec with one gets
//! that profile instead ([`oci`]), so a profile that allows everything
//! (`defaultAction` `SCMP_ACT_ALLOW`, no rules) runs unconfined.

use std::collections::BTreeMap;

use caps::Capability;
use oci_spec::runtime::Spec;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

mod oci;

use super::caps::CapabilitySets;
use super::channel::{Failure, FailureKind};

/// Calls denied whatever the capabilities. io_uring, as Docker's profile
/// since 25.0: its calls bypass seccomp once a ring is set up, and it has
/// been the kernel's busiest source of privilege escalations.
const ALWAYS: &[i64] = &[
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_add_key,
    libc::SYS_keyctl,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_nfsservctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ustat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_sysfs,
    #[cfg(target_arch = "x86_64")]
    libc::SYS__sysctl,
];

/// Calls denied unless the bounding set holds the capability.
const BY_CAPABILITY: &[(Capability, &[i64])] = &[
    (
        Capability::CAP_SYS_ADMIN,
        &[
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_bpf,
            libc::SYS_fanotify_init,
            libc::SYS_lookup_dcookie,
            libc::SYS_quotactl,
            libc::SYS_fsopen,
            libc::SYS_fsconfig,
            libc::SYS_fsmount,
            libc::SYS_fspick,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
            libc::SYS_perf_event_open,
        ],
    ),
    (
        Capability::CAP_SYS_BOOT,
        &[
            libc::SYS_reboot,
            libc::SYS_kexec_load,
            libc::SYS_kexec_file_load,
        ],
    ),
    (
        Capability::CAP_SYS_MODULE,
        &[
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
        ],
    ),
    (
        Capability::CAP_SYS_PTRACE,
        &[
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_kcmp,
        ],
    ),
    (
        Capability::CAP_SYS_TIME,
        &[
            libc::SYS_settimeofday,
            libc::SYS_clock_settime,
            libc::SYS_clock_adjtime,
        ],
    ),
    (
        Capability::CAP_SYS_NICE,
        &[
            libc::SYS_get_mempolicy,
            libc::SYS_set_mempolicy,
            libc::SYS_mbind,
            libc::SYS_move_pages,
        ],
    ),
    (Capability::CAP_SYS_PACCT, &[libc::SYS_acct]),
    (
        Capability::CAP_DAC_READ_SEARCH,
        &[libc::SYS_open_by_handle_at],
    ),
    (Capability::CAP_SYSLOG, &[libc::SYS_syslog]),
    (Capability::CAP_SYS_TTY_CONFIG, &[libc::SYS_vhangup]),
    #[cfg(target_arch = "x86_64")]
    (
        Capability::CAP_SYS_RAWIO,
        &[libc::SYS_iopl, libc::SYS_ioperm],
    ),
];

/// `clone` flags that make namespaces: allowed only with `CAP_SYS_ADMIN`.
const NAMESPACE_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// Checks the spec's `linux.seccomp` compiles (when the process is
/// created), so a bad profile is refused with its field named.
pub(crate) fn check(spec: &Spec) -> Result<(), String> {
    match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        None => Ok(()),
        Some(profile) => oci::filters(profile, native_arch().map_err(|f| f.message)?).map(drop),
    }
}

/// The filters to install for `spec`, in order: the spec's own profile, or
/// the default one when it has none. Empty when the profile allows all.
pub(crate) fn filters(spec: &Spec, caps: &CapabilitySets) -> Result<Vec<BpfProgram>, Failure> {
    match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        None => default_filters(caps),
        Some(profile) => oci::filters(profile, native_arch()?)
            .map_err(|m| Failure::new(FailureKind::InvalidArgument, m)),
    }
}

fn native_arch() -> Result<TargetArch, Failure> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| {
        Failure::new(
            FailureKind::Other,
            format!("seccomp on this architecture: {e}"),
        )
    })
}

fn default_filters(caps: &CapabilitySets) -> Result<Vec<BpfProgram>, Failure> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| {
        Failure::new(
            FailureKind::Other,
            format!("seccomp on this architecture: {e}"),
        )
    })?;
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> =
        ALWAYS.iter().map(|nr| (*nr, Vec::new())).collect();
    for (cap, calls) in BY_CAPABILITY {
        if !caps.bounds(*cap) {
            denied.extend(calls.iter().map(|nr| (*nr, Vec::new())));
        }
    }
    let mut filters = Vec::new();
    if !caps.bounds(Capability::CAP_SYS_ADMIN) {
        let mut rules = Vec::new();
        for flag in NAMESPACE_FLAGS {
            let flag = u64::from(flag.cast_unsigned());
            let condition = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )
            .map_err(compile_error)?;
            rules.push(SeccompRule::new(vec![condition]).map_err(compile_error)?);
        }
        denied.insert(libc::SYS_clone, rules);
        let clone3 = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
        filters.push(compile(clone3, libc::ENOSYS, arch)?);
    }
    // AF_VSOCK sockets: the guest's vsock reaches the host's vsock back end
    // and the agent's port, which no container has business with (Docker's
    // profile refuses the family too).
    let vsock = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        u64::from(libc::AF_VSOCK.cast_unsigned()),
    )
    .map_err(compile_error)?;
    denied.insert(
        libc::SYS_socket,
        vec![SeccompRule::new(vec![vsock]).map_err(compile_error)?],
    );
    filters.push(compile(denied, libc::EPERM, arch)?);
    Ok(filters)
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
    arch: TargetArch,
) -> Result<BpfProgram, Failure> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno.cast_unsigned()),
        arch,
    )
    .map_err(compile_error)?;
    BpfProgram::try_from(filter).map_err(compile_error)
}

fn compile_error(err: impl std::fmt::Display) -> Failure {
    Failure::new(
        FailureKind::Other,
        format!("compile the seccomp filter: {err}"),
    )
}

/// Installs `filter` on the calling thread. Unlike `seccompiler::apply_filter`
/// it leaves `no_new_privs` to the spec: without it the caller needs
/// `CAP_SYS_ADMIN`, which the launcher still has at this point.
pub(crate) fn install(filter: &BpfProgram) -> Result<(), Failure> {
    let len = u16::try_from(filter.len())
        .map_err(|_| Failure::new(FailureKind::Other, "seccomp filter too long"))?;
    let program = libc::sock_fprog {
        len,
        // seccompiler's sock_filter is #[repr(C)] with the kernel's layout
        // (u16 code, u8 jt, u8 jf, u32 k), the same as libc's.
        filter: filter.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `program` points at `filter`, which outlives the call; the
    // kernel copies the program and keeps no pointer into it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &raw const program,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(Failure::io(
            "install the seccomp filter",
            &std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_default_profile_compiles() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}}}"#,
        );
        let filters = filters(&s, &CapabilitySets::from_spec(&s)).unwrap();
        assert_eq!(filters.len(), 2);
        assert!(filters.iter().all(|f| !f.is_empty()));
    }

    /// Installs the default filters in a child process and reports, by its
    /// exit code, whether io_uring and AF_VSOCK sockets were refused with
    /// EPERM while an AF_UNIX socket was still allowed.
    #[test]
    fn the_default_profile_refuses_io_uring_and_vsock_sockets() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}}}"#,
        );
        let filters = filters(&s, &CapabilitySets::from_spec(&s)).unwrap();
        // SAFETY: the child only makes system calls and exits with `_exit`;
        // it touches no lock another thread of the test binary may hold.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            // SAFETY: plain prctl; no pointers.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            for filter in &filters {
                if install(filter).is_err() {
                    // SAFETY: ends the child without running the parent's destructors.
                    unsafe { libc::_exit(10) };
                }
            }
            let mut params = [0u8; 120];
            // SAFETY: io_uring_setup reads and writes `params`, 120 bytes.
            let ring = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) };
            let ring_refused =
                ring == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            // SAFETY: plain socket calls.
            let vsock = unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) };
            let vsock_refused =
                vsock == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            // SAFETY: plain socket call.
            let unix = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
            let code = i32::from(!ring_refused)
                | (i32::from(!vsock_refused) << 1)
                | (i32::from(unix < 0) << 2);
            // SAFETY: ends the child.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child made above.
        unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert!(libc::WIFEXITED(status), "the child ended by a signal");
        let code = libc::WEXITSTATUS(status);
        assert_eq!(code & 1, 0, "io_uring_setup was not refused ({code})");
        assert_eq!(code & 2, 0, "an AF_VSOCK socket was not refused ({code})");
        assert_eq!(code & 4, 0, "an AF_UNIX socket was refused ({code})");
        assert_ne!(code, 10, "the filter did not install");
    }

    #[test]
    fn an_allow_all_profile_is_unconfined_and_others_are_compiled() {
        let open = spec(
            r#"{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}},
               "linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}"#,
        );
        assert!(
            filters(&open, &CapabilitySets::from_spec(&open))
                .unwrap()
                .is_empty()
        );
        let custom = spec(
            r#"{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}},
               "linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO",
                 "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}}}"#,
        );
        let filters = filters(&custom, &CapabilitySets::from_spec(&custom)).unwrap();
        assert_eq!(filters.len(), 1);
    }
}
