//! Command-line options, also when the kernel starts PID 1 without argv.

use std::path::PathBuf;

/// What `--help` and a bad option print.
pub(crate) const USAGE: &str = "usage: vminitd [--unix PATH | --vsock-port PORT] [--log FILTER]";

/// Where the agent listens.
#[derive(Debug, Clone)]
pub(crate) enum Listen {
    /// AF_VSOCK on this port, any CID (in a VM).
    Vsock(u32),
    /// A unix socket at this path (on a host, for tests).
    Unix(PathBuf),
    /// The virtio-serial port `cz.agent`, multiplexed (in a VM whose
    /// command line says `VMINITD_AGENT=serial`).
    Serial,
}

/// The parsed options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) listen: Listen,
    log: String,
}

impl Options {
    /// Options from this process's arguments; when the kernel started us with
    /// an empty argv, from `/proc/self/cmdline` (mounted by then).
    pub(crate) fn from_env() -> Result<Self, String> {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        if std::env::args_os().next().is_none()
            && let Ok(raw) = std::fs::read("/proc/self/cmdline")
        {
            args = raw
                .split(|b| *b == 0)
                .skip(1)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
        }
        Self::parse(args)
    }

    /// Options from `args` (without the program name).
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        // The kernel passes `VMINITD_AGENT=serial` from its command line to
        // init as an environment variable.
        let listen = match std::env::var("VMINITD_AGENT").as_deref() {
            Ok("serial") => Listen::Serial,
            _ => Listen::Vsock(containerization_agent::AGENT_PORT),
        };
        let mut options = Options {
            listen,
            log: std::env::var("VMINITD_LOG").unwrap_or_else(|_| "info".to_owned()),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--unix" => options.listen = Listen::Unix(PathBuf::from(value("--unix")?)),
                "--vsock-port" => {
                    let port = value("--vsock-port")?;
                    let port = port
                        .parse()
                        .map_err(|_| format!("--vsock-port {port:?} is not a port number"))?;
                    options.listen = Listen::Vsock(port);
                }
                "--log" => options.log = value("--log")?,
                // The kernel hands init any command-line word it does not know.
                other if !other.starts_with("--") => {}
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(options)
    }

    /// The `tracing` filter: `LEVEL` or `TARGET=LEVEL` pairs, comma
    /// separated. `Targets` rather than `EnvFilter`: the latter compiles
    /// regular expressions to parse its directives, several milliseconds of
    /// every boot under TCG.
    pub(crate) fn log_filter(&self) -> tracing_subscriber::filter::Targets {
        self.log.parse().unwrap_or_else(|_| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        })
    }
}
