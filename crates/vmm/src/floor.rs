//! The boot floor: an initramfs whose `/init` powers the guest off at once.
//!
//! Booting it with the same QEMU command and kernel as a real VM measures
//! what no init system can beat on this machine: QEMU's start, the kernel's
//! boot, and its power-off. Boot benchmarks report time to agent ready as a
//! ratio of this floor (`bench/vmm`).
//!
//! `/init` is a 144-byte static x86-64 ELF written here byte by byte: one
//! `reboot(2)` system call with `LINUX_REBOOT_CMD_RESTART` (the microvm
//! guest has no power-off; `-no-reboot` turns a reboot into QEMU's exit).

use std::path::{Path, PathBuf};

use crate::VmmError;
use crate::cpio::CpioWriter;
use crate::error::io_at;

/// Where the program is loaded.
const LOAD_ADDRESS: u64 = 0x40_0000;
/// The ELF header and the one program header before the code.
const HEADERS: usize = 64 + 56;

/// The machine code: `reboot(0xfee1dead, 0x28121969, RESTART)`, then spin.
const CODE: [u8; 22] = [
    0xb8, 0xa9, 0x00, 0x00, 0x00, // mov eax, 169 (reboot)
    0xbf, 0xad, 0xde, 0xe1, 0xfe, // mov edi, LINUX_REBOOT_MAGIC1
    0xbe, 0x69, 0x19, 0x12, 0x28, // mov esi, LINUX_REBOOT_MAGIC2
    0xba, 0x67, 0x45, 0x23, 0x01, // mov edx, LINUX_REBOOT_CMD_RESTART
    0x0f, 0x05, // syscall
];

/// The static ELF executable that reboots at once.
pub fn poweroff_init() -> Vec<u8> {
    let mut code = CODE.to_vec();
    code.extend_from_slice(&[0xeb, 0xfe]); // jmp . (never reached)
    let size = (HEADERS + code.len()) as u64;
    let mut elf = Vec::with_capacity(size as usize);
    // ELF header: 64-bit, little-endian, version 1, System V.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&(LOAD_ADDRESS + HEADERS as u64).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers' offset
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // header size
    elf.extend_from_slice(&56u16.to_le_bytes()); // program header size
    elf.extend_from_slice(&1u16.to_le_bytes()); // one program header
    elf.extend_from_slice(&[0; 6]); // no section headers or names
    // PT_LOAD of the whole file, read and execute.
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes());
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes());
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(&code);
    elf
}

/// Writes the floor's initramfs (`/init` and `/dev/console`) into `dir` and
/// returns its path.
pub fn floor_initramfs(dir: &Path) -> Result<PathBuf, VmmError> {
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    let path = dir.join("floor.cpio");
    let file = std::fs::File::create(&path).map_err(io_at(&path))?;
    let mut cpio = CpioWriter::new(std::io::BufWriter::new(file));
    let write = |cpio: &mut CpioWriter<_>| -> std::io::Result<()> {
        cpio.dir("dev", 0o755)?;
        cpio.char_device("dev/console", 0o600, 5, 1)?;
        cpio.file("init", 0o755, &poweroff_init())
    };
    write(&mut cpio).map_err(io_at(&path))?;
    cpio.finish().map_err(io_at(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_is_an_elf_of_the_declared_size() {
        let elf = poweroff_init();
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(elf.len(), HEADERS + CODE.len() + 2);
        let filesz = u64::from_le_bytes(elf[64 + 32..64 + 40].try_into().unwrap());
        assert_eq!(filesz as usize, elf.len());
    }
}
