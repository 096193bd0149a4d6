//! Foreign architectures: binaries of another CPU run in the guest through
//! a static user-mode emulator, as Rosetta does for Apple's package and
//! `qemu-user-static` with binfmt_misc does for Docker and Podman.
//!
//! One table ([`EMULATORS`]) names, for each architecture, Debian's
//! emulator and the binfmt_misc magic and mask of its ELF binaries (class,
//! byte order, ELF version, executable or shared object, machine).
//! [`emulator_for`] says which row a container needs, if any: none when the
//! host (or, for 32-bit x86 and ARM, its kernel's compatibility mode) runs
//! the image natively. The emulator goes into the guest's initramfs
//! ([`Emulator::initramfs_file`]; each emulator is its own archive, and so
//! its own template shape, so native containers are untouched), and is
//! registered before the container's process starts
//! ([`Emulator::register`]) with the flags:
//!
//! - `F`: the kernel opens the emulator when it is registered, so it is
//!   found after `pivot_root`, inside the container's mount namespace;
//! - `P`: `argv[0]` is kept (the kernel tells the emulator through
//!   `AT_FLAGS`), so busybox and other multi-call programs see their name;
//! - `O` and `C`: the emulator is given the program open, and the process's
//!   credentials come from the program, not the emulator: a setuid program
//!   runs with its owner's uid, as it would natively (without `C`, `su` or
//!   `ping` in a foreign image run with the caller's uid). The cost: the
//!   emulator, which is ours and read-only in the guest, runs with those
//!   credentials; a flaw in it is reachable only from inside the
//!   container's own VM.
//!
//! ```
//! use containerization::emulation::emulator_for;
//! use containerization_oci::Platform;
//!
//! let host: Platform = "linux/amd64".parse().unwrap();
//! let arm64: Platform = "linux/arm64".parse().unwrap();
//! let emulator = emulator_for(&host, &arm64, false).unwrap().expect("foreign");
//! assert_eq!(emulator.qemu, "aarch64");
//! assert_eq!(emulator_for(&host, &host, false).unwrap(), None);
//! ```

use std::path::PathBuf;

use containerization_agent::AgentClient;
use containerization_agent::proto::v1::RegisterBinfmtRequest;
use containerization_oci::Platform;
use containerization_vmm::{InitramfsFile, Kernel};

use crate::Error;

/// Where Debian's `qemu-user-static` installs its emulators.
const HOST_EMULATORS: &str = "/usr/bin";

/// Where the emulator lies in the guest (the initramfs's root).
const GUEST_EMULATORS: &str = "cz/emulators";

/// The binfmt_misc flags (see the module's documentation).
pub const FLAGS: &str = "POCF";

/// One architecture's emulator and how binfmt_misc recognises its binaries.
#[derive(Debug, PartialEq, Eq)]
pub struct Emulator {
    /// The OCI architecture (`arm64`, `arm`, `386`, ...).
    pub architecture: &'static str,
    /// QEMU's name for it (`qemu-<qemu>-static`).
    pub qemu: &'static str,
    /// The first bytes of its ELF binaries.
    pub magic: &'static [u8],
    /// Which bits of them are compared.
    pub mask: &'static [u8],
}

/// ELF header masks: all of the identification but the OS ABI byte, both
/// executables (2) and shared objects (3, position-independent programs).
const MASK: &[u8] =
    b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";
/// The same for big-endian machines (type and machine bytes swapped).
const MASK_BE: &[u8] =
    b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff";
/// x86, as in QEMU's own table: the lowest bit of the class and byte-order
/// bytes is not compared.
const MASK_X86: &[u8] =
    b"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";

/// Every architecture an emulator covers, in either direction.
pub const EMULATORS: &[Emulator] = &[
    Emulator {
        architecture: "arm64",
        qemu: "aarch64",
        magic: b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
        mask: MASK,
    },
    Emulator {
        architecture: "arm",
        qemu: "arm",
        magic: b"\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00",
        mask: MASK,
    },
    Emulator {
        architecture: "ppc64le",
        qemu: "ppc64le",
        magic: b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15\x00",
        mask: MASK,
    },
    Emulator {
        architecture: "s390x",
        qemu: "s390x",
        magic: b"\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16",
        mask: MASK_BE,
    },
    Emulator {
        architecture: "mips64le",
        qemu: "mips64el",
        magic: b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00",
        mask: MASK,
    },
    Emulator {
        architecture: "riscv64",
        qemu: "riscv64",
        magic: b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00",
        mask: MASK,
    },
    Emulator {
        architecture: "386",
        qemu: "i386",
        magic: b"\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00",
        mask: MASK_X86,
    },
    Emulator {
        architecture: "amd64",
        qemu: "x86_64",
        magic: b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00",
        mask: MASK_X86,
    },
];

/// Whether `kernel` runs the 32-bit binaries of its own architecture
/// (`CONFIG_IA32_EMULATION` on x86_64, `CONFIG_COMPAT` on arm64): assumed
/// when its configuration is not recorded, as for most stock kernels.
pub fn kernel_runs_32_bit(kernel: &Kernel) -> bool {
    let Some(config) = kernel
        .config()
        .and_then(|p| std::fs::read_to_string(p).ok())
    else {
        return true;
    };
    config
        .lines()
        .any(|l| l == "CONFIG_IA32_EMULATION=y" || l == "CONFIG_COMPAT=y")
}

/// The emulator a container of `image` needs on `host`: `None` when the
/// host runs it natively (with `compat_32_bit`, its kernel also runs 386 on
/// amd64, and arm on arm64). A platform no emulator covers is an error
/// naming it and what would make it run.
pub fn emulator_for(
    host: &Platform,
    image: &Platform,
    compat_32_bit: bool,
) -> Result<Option<&'static Emulator>, Error> {
    if image.os != "linux" {
        return Err(Error::UnsupportedPlatform {
            platform: image.to_string(),
            detail: "only Linux images run in these VMs".to_owned(),
        });
    }
    let native = host.runs(image)
        || (compat_32_bit
            && matches!(
                (host.architecture.as_str(), image.architecture.as_str()),
                ("amd64", "386") | ("arm64", "arm")
            ));
    if native {
        return Ok(None);
    }
    match EMULATORS
        .iter()
        .find(|e| e.architecture == image.architecture)
    {
        Some(emulator) => Ok(Some(emulator)),
        None => Err(Error::UnsupportedPlatform {
            platform: image.to_string(),
            detail: format!(
                "no emulator runs it on this {host} host; emulated architectures: {}",
                EMULATORS
                    .iter()
                    .filter(|e| e.architecture != host.architecture)
                    .map(|e| e.architecture)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

impl Emulator {
    /// Debian's static emulator on the host.
    pub fn host_binary(&self) -> PathBuf {
        PathBuf::from(HOST_EMULATORS).join(format!("qemu-{}-static", self.qemu))
    }

    /// The emulator's path in the guest.
    pub fn guest_path(&self) -> String {
        format!("/{GUEST_EMULATORS}/qemu-{}-static", self.qemu)
    }

    /// The emulator as a file of the guest's initramfs; an error naming the
    /// package when the host lacks it.
    pub fn initramfs_file(&self) -> Result<InitramfsFile, Error> {
        let host_path = self.host_binary();
        if !host_path.is_file() {
            return Err(Error::UnsupportedPlatform {
                platform: format!("linux/{}", self.architecture),
                detail: format!(
                    "its emulator {} is missing: install Debian's qemu-user-static \
                     (scripts/setup does)",
                    host_path.display()
                ),
            });
        }
        Ok(InitramfsFile {
            guest_path: self.guest_path()[1..].to_owned(),
            host_path,
            mode: 0o755,
        })
    }

    /// The binfmt_misc entry that hands this architecture's binaries to
    /// the emulator at `guest_path`.
    pub fn registration(&self) -> RegisterBinfmtRequest {
        RegisterBinfmtRequest {
            name: format!("cz-{}", self.qemu),
            offset: 0,
            magic: self.magic.to_vec(),
            mask: self.mask.to_vec(),
            interpreter: self.guest_path(),
            flags: FLAGS.to_owned(),
        }
    }

    /// Registers the emulator in the guest `agent` serves.
    pub async fn register(&self, agent: &AgentClient) -> Result<(), Error> {
        agent.register_binfmt(self.registration()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Platform {
        text.parse().unwrap()
    }

    #[test]
    fn each_row_is_well_formed_and_matches_its_own_elf_header_only() {
        for emulator in EMULATORS {
            assert_eq!(emulator.magic.len(), emulator.mask.len(), "{emulator:?}");
            assert_eq!(&emulator.magic[..4], b"\x7fELF");
            let matches = |header: &[u8]| {
                emulator
                    .magic
                    .iter()
                    .zip(emulator.mask)
                    .zip(header)
                    .all(|((m, k), h)| h & k == m & k)
            };
            assert!(matches(emulator.magic));
            for other in EMULATORS
                .iter()
                .filter(|o| o.architecture != emulator.architecture)
            {
                assert!(
                    !matches(other.magic),
                    "{} takes {}",
                    emulator.qemu,
                    other.qemu
                );
            }
            // A position-independent program (ET_DYN) is taken too.
            let mut pie = emulator.magic.to_vec();
            let type_at = if emulator.magic[5] == 2 { 17 } else { 16 };
            pie[type_at] = 3;
            assert!(matches(&pie), "{} refuses its PIE", emulator.qemu);
        }
    }

    #[test]
    fn the_reverse_direction_is_the_same_table() {
        let arm_host = p("linux/arm64");
        let amd64 = emulator_for(&arm_host, &p("linux/amd64"), true)
            .unwrap()
            .unwrap();
        assert_eq!(amd64.qemu, "x86_64");
        let line = amd64.registration();
        assert_eq!(line.interpreter, "/cz/emulators/qemu-x86_64-static");
        assert_eq!(line.flags, "POCF");
        assert_eq!(line.name, "cz-x86_64");
        assert_eq!(
            emulator_for(&arm_host, &p("linux/arm64/v8"), true).unwrap(),
            None
        );
        assert_eq!(
            emulator_for(&arm_host, &p("linux/arm/v7"), true).unwrap(),
            None
        );
        let arm = emulator_for(&arm_host, &p("linux/arm/v7"), false)
            .unwrap()
            .unwrap();
        assert_eq!(arm.qemu, "arm");
    }

    #[test]
    fn native_platforms_need_none_and_386_needs_one_without_ia32() {
        let host = p("linux/amd64");
        assert_eq!(emulator_for(&host, &p("linux/amd64"), false).unwrap(), None);
        assert_eq!(emulator_for(&host, &p("linux/386"), true).unwrap(), None);
        let i386 = emulator_for(&host, &p("linux/386"), false)
            .unwrap()
            .unwrap();
        assert_eq!(i386.qemu, "i386");
        for (platform, qemu) in [
            ("linux/arm64", "aarch64"),
            ("linux/arm/v7", "arm"),
            ("linux/arm/v5", "arm"),
            ("linux/ppc64le", "ppc64le"),
            ("linux/s390x", "s390x"),
            ("linux/mips64le", "mips64el"),
            ("linux/riscv64", "riscv64"),
        ] {
            let emulator = emulator_for(&host, &p(platform), false).unwrap();
            assert_eq!(emulator.map(|e| e.qemu), Some(qemu), "{platform}");
        }
    }

    #[test]
    fn platforms_no_emulator_covers_are_named_with_what_would_run_them() {
        let host = p("linux/amd64");
        let err = emulator_for(&host, &p("linux/z80"), false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("linux/z80") && text.contains("arm64"),
            "{text}"
        );
        assert!(
            !text.contains("amd64,"),
            "the host's own architecture: {text}"
        );
        let err = emulator_for(&host, &p("windows/amd64"), false).unwrap_err();
        assert!(err.to_string().contains("only Linux"), "{err}");
    }
}
