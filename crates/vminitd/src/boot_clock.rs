//! Log timestamps on the kernel's clock: seconds since boot, as the kernel's
//! own console lines show them (`[    0.635779]`), so vminitd's lines and the
//! kernel's can be read as one timeline when the boot is being measured.

use std::fmt;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// A [`FormatTime`] that writes `CLOCK_MONOTONIC` (which starts near zero
/// at the guest's boot) in the kernel's console format.
pub(crate) struct SinceBoot;

impl FormatTime for SinceBoot {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        write!(w, "[{:5}.{:06}]", now.tv_sec, now.tv_nsec / 1000)
    }
}
