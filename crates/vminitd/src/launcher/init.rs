//! The launcher's last stage: inside the container's namespaces, set up what
//! the spec asks for and exec the process.
//!
//! The order matters: mounts and `pivot_root` first (they need the old
//! root); hostname and sysctls (they write through `/proc`); masked and
//! read-only paths (after the sysctls, which they would block); the terminal
//! (in the container's `devpts`, which only then is its `/dev/pts`); rlimits; the
//! bounding set and the seccomp filter while still root with every
//! capability; then the user change, the remaining capability sets, the
//! working folder, the umask and `no_new_privs`; exec last. A failure is
//! sent to vminitd over the channel; success closes the channel (it is
//! close-on-exec).

use std::convert::Infallible;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::caps::CapabilitySets;
use super::channel::{Channel, Failure, FailureKind, LaunchConfig, Message, Target};
use super::user::{self, Identity};
use super::{mounts, namespaces, paths, rlimits, seccomp};
use crate::pty;

/// The search path a process gets when its environment sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Sets up and execs; returns only why it could not.
pub(crate) fn run(config: &LaunchConfig, channel: &mut Channel) -> Failure {
    match setup_and_exec(config, channel) {
        Ok(never) => match never {},
        Err(failure) => failure,
    }
}

fn setup_and_exec(config: &LaunchConfig, channel: &mut Channel) -> Result<Infallible, Failure> {
    let spec = &config.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Failure::new(FailureKind::InvalidArgument, "spec has no process"))?;
    // A session of its own; the terminal, if any, becomes its controlling one.
    rustix::process::setsid().map_err(|e| Failure::io("setsid", &e.into()))?;
    if let Target::Create { rootfs } = &config.target {
        for warning in mounts::enter_rootfs(spec, rootfs)? {
            let _ = channel.send(&Message::Warning(warning));
        }
        if namespaces::wants(spec, LinuxNamespaceType::Uts)
            && let Some(hostname) = spec.hostname().as_deref().filter(|h| !h.is_empty())
        {
            rustix::system::sethostname(hostname.as_bytes())
                .map_err(|e| Failure::io(format!("set hostname {hostname}"), &e.into()))?;
        }
        apply_sysctls(spec)?;
        paths::apply(spec)?;
        mounts::finish_root(spec)?;
    }
    // In the container's mount namespace now (its own, or the one an exec
    // joined): the terminal is opened in its devpts, so the process can name
    // it, and vminitd gets the primary end.
    if let Some(size) = config.terminal {
        let primary = pty::open_in_container(size.rows, size.columns)
            .map_err(|e| Failure::io("open the process's terminal", &e))?;
        channel
            .send(&Message::Terminal {
                primary: Some(primary),
            })
            .map_err(|e| Failure::io("pass the terminal to vminitd", &e))?;
    }
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    let identity = user::resolve(
        process.user(),
        &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
        &std::fs::read_to_string("/etc/group").unwrap_or_default(),
    )?;
    let env = environment(process, &identity);
    let cwd = process.cwd();
    if !cwd.is_dir() {
        std::fs::create_dir_all(cwd)
            .map_err(|e| Failure::io(format!("create working folder {}", cwd.display()), &e))?;
    }
    let args = process.args().as_deref().unwrap_or_default();
    let name = args
        .first()
        .ok_or_else(|| Failure::new(FailureKind::InvalidArgument, "process.args is empty"))?;
    let program = find_program(name, &env)?;
    let caps = CapabilitySets::from_spec(spec);
    let filters = seccomp::filters(spec, &caps)?;
    caps.apply_bounding()?;
    for filter in &filters {
        seccomp::install(filter)?;
    }
    user::become_user(&identity)?;
    caps.apply_rest()?;
    rustix::process::chdir(cwd)
        .map_err(|e| Failure::io(format!("chdir {}", cwd.display()), &e.into()))?;
    let umask = process.user().umask().unwrap_or(0o022);
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(umask));
    if process.no_new_privileges() == Some(true) {
        rustix::thread::set_no_new_privs(true)
            .map_err(|e| Failure::io("set no_new_privs", &e.into()))?;
    }
    let err = std::process::Command::new(&program)
        .arg0(name)
        .args(&args[1..])
        .env_clear()
        .envs(env.iter().filter_map(|kv| kv.split_once('=')))
        .exec();
    Err(Failure::io(format!("exec {name}"), &err))
}

/// Writes the spec's sysctls through `/proc/sys` (the container's own `/proc`).
fn apply_sysctls(spec: &oci_spec::runtime::Spec) -> Result<(), Failure> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctls {
        if key.is_empty() || key.contains("..") || key.contains('/') {
            return Err(Failure::new(
                FailureKind::InvalidArgument,
                format!("linux.sysctl: {key:?} is not a sysctl key"),
            ));
        }
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| Failure::io(format!("sysctl {key}"), &e))?;
    }
    Ok(())
}

/// The spec's environment, with `PATH` and `HOME` filled in when missing.
fn environment(process: &Process, identity: &Identity) -> Vec<String> {
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|kv| kv.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        env.push(format!("HOME={}", identity.home.as_deref().unwrap_or("/")));
    }
    env
}

/// `name` itself when it holds a '/', else its first match in `PATH`.
fn find_program(name: &str, env: &[String]) -> Result<PathBuf, Failure> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| {
            rustix::fs::access(candidate, rustix::fs::Access::EXEC_OK).is_ok()
                && candidate.is_file()
        })
        .ok_or_else(|| {
            Failure::new(
                FailureKind::NotFound,
                format!("exec {name}: no such file or directory in PATH {path}"),
            )
        })
}
