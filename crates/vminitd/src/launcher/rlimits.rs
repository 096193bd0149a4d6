//! Resource limits from the spec's `process.rlimits`.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};
use rustix::process::{Resource, Rlimit};

use super::channel::Failure;

/// Sets every limit the spec lists.
pub(crate) fn apply(rlimits: &[PosixRlimit]) -> Result<(), Failure> {
    for rlimit in rlimits {
        let resource = resource(rlimit.typ());
        let limit = Rlimit {
            current: Some(rlimit.soft()).filter(|v| *v != u64::MAX),
            maximum: Some(rlimit.hard()).filter(|v| *v != u64::MAX),
        };
        rustix::process::setrlimit(resource, limit).map_err(|e| {
            Failure::io(
                format!(
                    "set {} to {}/{}",
                    rlimit.typ(),
                    rlimit.soft(),
                    rlimit.hard()
                ),
                &e.into(),
            )
        })?;
    }
    Ok(())
}

fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::Cpu,
        PosixRlimitType::RlimitFsize => Resource::Fsize,
        PosixRlimitType::RlimitData => Resource::Data,
        PosixRlimitType::RlimitStack => Resource::Stack,
        PosixRlimitType::RlimitCore => Resource::Core,
        PosixRlimitType::RlimitRss => Resource::Rss,
        PosixRlimitType::RlimitNproc => Resource::Nproc,
        PosixRlimitType::RlimitNofile => Resource::Nofile,
        PosixRlimitType::RlimitMemlock => Resource::Memlock,
        PosixRlimitType::RlimitAs => Resource::As,
        PosixRlimitType::RlimitLocks => Resource::Locks,
        PosixRlimitType::RlimitSigpending => Resource::Sigpending,
        PosixRlimitType::RlimitMsgqueue => Resource::Msgqueue,
        PosixRlimitType::RlimitNice => Resource::Nice,
        PosixRlimitType::RlimitRtprio => Resource::Rtprio,
        PosixRlimitType::RlimitRttime => Resource::Rttime,
    }
}
