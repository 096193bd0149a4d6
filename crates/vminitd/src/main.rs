//! `vminitd`: PID 1 of every containerization guest.
//!
//! As PID 1 in a VM it first moves itself from the initramfs onto a tmpfs
//! ([`switch_root`]), so `/` is a real mount the launcher can `pivot_root`
//! away from; then it mounts the early file systems, loads the kernel modules
//! the initramfs carries (in `modules.dep` order), sets the `RLIMIT_NOFILE`
//! and `RLIMIT_NPROC` Docker's containers get, brings up `lo`, reaps every
//! zombie and serves the sandbox protocol
//! (`containerization-agent`) on the serial port `cz.agent` ([`serial`]) or
//! vsock port 1024, as the kernel command line says. The shutdown call and
//! SIGTERM sync, unmount and power the VM off.
//!
//! Containers are started by the [`launcher`]: vminitd re-executes itself
//! for each container process and, over a typed channel, has it enter new
//! namespaces and a cgroup v2 group, `pivot_root` into the rootfs, apply the
//! OCI runtime spec's mounts, masked paths, user, capabilities, rlimits and
//! seccomp filter, and exec; an exec joins a running container the same way.
//! Files move in and out as tar streams ([`copy`]) over sockets of their own,
//! like process stdio.
//!
//! Run by hand on a host (`vminitd --unix PATH`) it serves the same protocol
//! on a unix socket, becomes a child subreaper, and skips what only PID 1 may
//! do: that is how the agent is tested without a VM.

mod binfmt;
mod boot_clock;
mod copy;
mod disks;
mod early;
mod entropy;
mod etc_files;
mod filesystem;
mod fill;
mod launcher;
mod loopback;
mod modules;
mod network;
mod options;
mod power;
mod process;
mod pty;
mod reaper;
mod serial;
mod server;
mod stdio;
mod switch_root;

use std::process::ExitCode;

use options::{Listen, Options};

fn main() -> ExitCode {
    // The launcher is this same binary, re-executed for each container
    // process: it must not become the agent.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(launcher::LAUNCH_COMMAND) {
        return launcher::main(&args[2..]);
    }
    let entered = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let pid1 = rustix::process::getpid().is_init();
    if pid1 {
        early::install_panic_hook();
        // Moves / onto a tmpfs when it is the initramfs.
        switch_root::leave_initramfs();
        early::setup();
    }
    let options = match Options::from_env() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("vminitd: {message}");
            eprintln!("{}", options::USAGE);
            return finish(pid1, ExitCode::from(2));
        }
    };
    init_log(&options, pid1);
    if pid1 {
        tracing::debug!(
            entered = format!("{}.{:06}", entered.tv_sec, entered.tv_nsec / 1000),
            "left the initramfs; early file systems mounted"
        );
        modules::load_from_initramfs();
    } else if let Err(err) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        tracing::warn!("cannot become a child subreaper: {err}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("vminitd: cannot start the async runtime: {err}");
            return finish(pid1, ExitCode::FAILURE);
        }
    };
    let result = runtime.block_on(server::serve(options.listen, pid1));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vminitd: {err}");
            ExitCode::FAILURE
        }
    };
    finish(pid1, code)
}

/// Logs go to stderr (the console, for PID 1) through `options`' filter. As
/// PID 1 the lines carry the kernel's clock, so they read as one timeline
/// with the kernel's, and each agent call's span says how long it took.
fn init_log(options: &Options, pid1: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = options.log_filter();
    let log = tracing_subscriber::fmt()
        // The filter layer decides; the builder's own (INFO) must not.
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE);
    if pid1 {
        log.with_timer(boot_clock::SinceBoot)
            .finish()
            .with(filter)
            .init();
    } else {
        log.finish().with(filter).init();
    }
}

/// PID 1 must never return: it powers the VM off instead.
fn finish(pid1: bool, code: ExitCode) -> ExitCode {
    if pid1 {
        power::off("vminitd stopped serving");
    }
    code
}

#[cfg(test)]
mod tests {
    #[test]
    fn listen_default_is_the_agent_vsock_port() {
        let options = crate::Options::parse(Vec::<String>::new()).unwrap();
        assert!(matches!(
            options.listen,
            crate::Listen::Vsock(containerization_agent::AGENT_PORT)
        ));
    }
}
