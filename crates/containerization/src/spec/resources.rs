//! Resource limits: `--memory` and `--cpus`, checked as Docker checks them
//! and turned into the spec's cgroup settings.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use crate::Error;

/// Docker's smallest memory limit: 6 MiB.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// The CFS period Docker uses for `--cpus`, in microseconds.
const CPU_PERIOD: u64 = 100_000;

/// The smallest CFS quota the kernel accepts, in microseconds (0.01 CPU).
const MIN_CPU_QUOTA: u64 = 1_000;

/// Parses Docker's `--memory` syntax: a number, optionally with a fraction,
/// then an optional unit `b`, `k`, `m`, `g` (also `t`, `p`), any case, in
/// binary units (`64m` is 64 MiB, `1k` 1024 bytes); `kb`, `mib` and one
/// space before the unit are accepted too, as Docker accepts them.
pub fn parse_memory(text: &str) -> Result<u64, Error> {
    parse_size("--memory", text)
}

/// [`parse_memory`]'s syntax for any size flag, naming `option` in errors.
pub(crate) fn parse_size(option: &str, text: &str) -> Result<u64, Error> {
    let bad = || Error::InvalidOption {
        option: option.into(),
        detail: format!(
            "{text:?} is not a size: write a number with an optional unit b, k, m or g, \
             such as 512m or 2g"
        ),
    };
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let suffix = suffix
        .strip_prefix(' ')
        .unwrap_or(suffix)
        .to_ascii_lowercase();
    let mut rest = suffix.as_str();
    let mut multiplier: u64 = 1;
    if let Some(unit) = rest.chars().next()
        && let Some(power) = "kmgtp".find(unit)
    {
        multiplier = 1024u64.pow(power as u32 + 1);
        rest = &rest[1..];
    }
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    if !(rest.is_empty() || rest == "b") {
        return Err(bad());
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || number.ends_with('.') || fraction.contains('.') {
        return Err(bad());
    }
    if fraction.is_empty() {
        let whole: u64 = whole.parse().map_err(|_| bad())?;
        return whole.checked_mul(multiplier).ok_or_else(bad);
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * multiplier as f64;
    if bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// The cgroup limits for `--memory` (bytes; 0 means none, as in Docker) and
/// `--cpus`; `None` when neither is set.
pub(crate) fn resources(
    memory_bytes: Option<u64>,
    cpus: Option<f64>,
) -> Result<Option<LinuxResources>, Error> {
    let memory = memory_bytes.filter(|b| *b != 0).map(memory).transpose()?;
    let cpu = cpus.map(cpu).transpose()?;
    if memory.is_none() && cpu.is_none() {
        return Ok(None);
    }
    let mut resources = LinuxResources::default();
    resources.set_memory(memory).set_cpu(cpu);
    Ok(Some(resources))
}

/// The memory limit, at least Docker's 6 MiB.
fn memory(bytes: u64) -> Result<LinuxMemory, Error> {
    let too_small = || Error::InvalidOption {
        option: "--memory".into(),
        detail: format!(
            "Minimum memory limit allowed is 6MB; {bytes} bytes were asked, give at least 6m"
        ),
    };
    if bytes < MIN_MEMORY {
        return Err(too_small());
    }
    let limit = i64::try_from(bytes).map_err(|_| Error::InvalidOption {
        option: "--memory".into(),
        detail: format!("{bytes} bytes is more than any machine has; give a smaller limit"),
    })?;
    let mut memory = LinuxMemory::default();
    memory.set_limit(Some(limit));
    Ok(memory)
}

/// `--cpus` as a CFS quota over Docker's 100 ms period.
fn cpu(cpus: f64) -> Result<LinuxCpu, Error> {
    let bad = |detail: String| Error::InvalidOption {
        option: "--cpus".into(),
        detail,
    };
    if !(cpus.is_finite() && cpus > 0.0) {
        return Err(bad(format!(
            "{cpus} is not a CPU count: give a number above 0, such as 0.5 or 2"
        )));
    }
    // Docker counts in nano-CPUs, then scales to the period, rounding down.
    let nano = (cpus * 1e9).round() as u128;
    let quota = nano * u128::from(CPU_PERIOD) / 1_000_000_000;
    if quota < u128::from(MIN_CPU_QUOTA) {
        return Err(bad(format!("{cpus} is too small: give at least 0.01")));
    }
    let quota = i64::try_from(quota).map_err(|_| bad(format!("{cpus} is too large")))?;
    let mut cpu = LinuxCpu::default();
    cpu.set_quota(Some(quota)).set_period(Some(CPU_PERIOD));
    Ok(cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn memory_units_are_binary_and_case_insensitive() {
        assert_eq!(parse_memory("64m").unwrap(), 64 * MIB);
        assert_eq!(parse_memory("64M").unwrap(), 64 * MIB);
        assert_eq!(parse_memory("1k").unwrap(), 1024);
        assert_eq!(parse_memory("2g").unwrap(), 2 * 1024 * MIB);
        assert_eq!(parse_memory("2G").unwrap(), 2 * 1024 * MIB);
        assert_eq!(parse_memory("100b").unwrap(), 100);
        assert_eq!(parse_memory("100").unwrap(), 100);
    }

    #[test]
    fn memory_accepts_dockers_longer_spellings() {
        assert_eq!(parse_memory("64mb").unwrap(), 64 * MIB);
        assert_eq!(parse_memory("64MiB").unwrap(), 64 * MIB);
        assert_eq!(parse_memory("64 m").unwrap(), 64 * MIB);
        assert_eq!(parse_memory("1.5g").unwrap(), 1536 * MIB);
    }

    #[test]
    fn memory_rejects_what_docker_rejects() {
        for text in [
            "", "m", "-1m", "12x", "1.m", ".5m", "1.2.3m", "1 2m", "64mm", " 64m",
        ] {
            let err = parse_memory(text).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid --memory: "),
                "{text}: {err}"
            );
        }
        assert!(parse_memory("99999999999999999999").is_err());
        assert!(parse_memory("99999999999p").is_err());
    }

    #[test]
    fn memory_below_6_mib_is_refused() {
        let err = resources(Some(5 * MIB), None).unwrap_err();
        assert!(
            err.to_string()
                .contains("Minimum memory limit allowed is 6MB"),
            "{err}"
        );
        let ok = resources(Some(6 * MIB), None).unwrap().unwrap();
        assert_eq!(ok.memory().unwrap().limit(), Some(6 * MIB as i64));
    }

    #[test]
    fn zero_memory_means_no_limit() {
        assert_eq!(resources(Some(0), None).unwrap(), None);
        assert_eq!(resources(None, None).unwrap(), None);
    }

    #[test]
    fn cpus_become_quota_over_a_100ms_period() {
        let r = resources(None, Some(1.5)).unwrap().unwrap();
        let cpu = r.cpu().clone().unwrap();
        assert_eq!((cpu.quota(), cpu.period()), (Some(150_000), Some(100_000)));
        let r = resources(None, Some(0.01)).unwrap().unwrap();
        assert_eq!(r.cpu().clone().unwrap().quota(), Some(1_000));
    }

    #[test]
    fn cpus_must_be_positive() {
        for cpus in [0.0, -1.0, f64::NAN, f64::INFINITY, 0.001] {
            let err = resources(None, Some(cpus)).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid --cpus: "),
                "{cpus}: {err}"
            );
        }
    }
}
