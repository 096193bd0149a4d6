//! The device cgroup of a container: which device nodes its processes may
//! open or make.
//!
//! cgroup v2 has no `devices.allow` file: the kernel asks a BPF program of
//! type `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the group, once per open
//! or mknod of a device node, with the device's type, major, minor and the
//! access wanted (`struct bpf_cgroup_dev_ctx`). The program returns 1 to
//! allow and 0 to refuse (the caller gets `EPERM`). This module assembles
//! that program from a list of allow rules, loads it with `bpf(2)` and
//! attaches it to the container's group; everything no rule names is
//! refused. Container root holds `CAP_MKNOD`, so without it any node it
//! makes (the guest's memory, its disks, the agent's port) would open.
//!
//! The program is attached without `BPF_F_ALLOW_OVERRIDE` or
//! `BPF_F_ALLOW_MULTI`, so no group below it can attach a program of its own.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;

/// A device type, as the kernel passes it (`BPF_DEVCG_DEV_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceType {
    /// A block device.
    Block = 1,
    /// A character device.
    Char = 2,
}

/// Making a node (`BPF_DEVCG_ACC_MKNOD`).
const MKNOD: u32 = 1;
/// Opening for reading (`BPF_DEVCG_ACC_READ`).
const READ: u32 = 2;
/// Opening for writing (`BPF_DEVCG_ACC_WRITE`).
const WRITE: u32 = 4;
/// `rwm`.
const ALL: u32 = MKNOD | READ | WRITE;

/// One allow rule: a device type, a major and minor (`None`: any) and the
/// accesses allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    typ: DeviceType,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

const fn rule(typ: DeviceType, major: Option<u32>, minor: Option<u32>, access: u32) -> DeviceRule {
    DeviceRule {
        typ,
        major,
        minor,
        access,
    }
}

/// What every container may reach: Docker's default device rules (moby's
/// `oci.DefaultLinuxSpec`, the list runc's `AllowedDevices` started from):
/// mknod of any character or block device (`c *:* m`, `b *:* m`), and
/// `rwm` on `/dev/null` 1:3, `/dev/zero` 1:5, `/dev/full` 1:7,
/// `/dev/random` 1:8, `/dev/urandom` 1:9, `/dev/tty` 5:0, `/dev/ptmx` 5:2,
/// the ptys of `/dev/pts` 136:* and `/dev/net/tun` 10:200.
///
/// `/dev/console` (5:1), in runc's older list but not Docker's, is left
/// out: in a guest it is the VM's serial console, which the host records,
/// and a container's `/dev` has no console node.
pub(crate) const DEFAULT_RULES: [DeviceRule; 11] = [
    rule(DeviceType::Char, None, None, MKNOD),
    rule(DeviceType::Block, None, None, MKNOD),
    rule(DeviceType::Char, Some(1), Some(3), ALL),
    rule(DeviceType::Char, Some(1), Some(5), ALL),
    rule(DeviceType::Char, Some(1), Some(7), ALL),
    rule(DeviceType::Char, Some(1), Some(8), ALL),
    rule(DeviceType::Char, Some(1), Some(9), ALL),
    rule(DeviceType::Char, Some(5), Some(0), ALL),
    rule(DeviceType::Char, Some(5), Some(2), ALL),
    rule(DeviceType::Char, Some(136), None, ALL),
    rule(DeviceType::Char, Some(10), Some(200), ALL),
];

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Instruction {
    code: u8,
    /// Destination register in the low nibble, source in the high one.
    registers: u8,
    offset: i16,
    immediate: i32,
}

// Opcodes (class | operation | source) and registers.
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP32_JNE_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

const fn insn(code: u8, dst: u8, src: u8, offset: i16, immediate: i32) -> Instruction {
    Instruction {
        code,
        registers: dst | (src << 4),
        offset,
        immediate,
    }
}

/// The program for `rules`: r2 = type, r3 = access, r4 = major, r5 = minor;
/// each rule is a block that jumps to the next one on a mismatch and
/// returns 1 when all its checks pass; after the last block, 0.
fn assemble(rules: &[DeviceRule]) -> Vec<Instruction> {
    let mut program = vec![
        // ctx->access_type: type in the low 16 bits, access in the high.
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_MOV_X, R3, R2, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for rule in rules {
        let mut checks = vec![(JMP32_JNE_K, R2, rule.typ as i32)];
        if let Some(major) = rule.major {
            checks.push((JMP32_JNE_K, R4, major.cast_signed()));
        }
        if let Some(minor) = rule.minor {
            checks.push((JMP32_JNE_K, R5, minor.cast_signed()));
        }
        // The access check: r1 = access & !allowed must be 0. Two
        // instructions before its jump; the block ends with mov and exit.
        let block_len = checks.len() + 2 + 1 + 2;
        let mut at = 0;
        for (code, register, value) in checks {
            at += 1;
            program.push(insn(code, register, 0, jump(block_len - at), value));
        }
        program.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
        program.push(insn(ALU32_AND_K, R1, 0, 0, !rule.access.cast_signed()));
        at += 3;
        program.push(insn(JMP32_JNE_K, R1, 0, jump(block_len - at), 0));
        program.push(insn(ALU32_MOV_K, R0, 0, 0, 1));
        program.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    program.push(insn(ALU32_MOV_K, R0, 0, 0, 0));
    program.push(insn(JMP_EXIT, 0, 0, 0, 0));
    program
}

/// A forward jump over `n` instructions (a block is a handful long).
fn jump(n: usize) -> i16 {
    i16::try_from(n).unwrap_or(i16::MAX)
}

// bpf(2) commands, program and attach types.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to the attach type.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Calls `bpf(command, attr)`.
fn bpf<T>(command: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `repr(C)` prefix of `union
    // bpf_attr` for `command`, and its exact size is passed; the kernel
    // zero-extends the rest. Pointers inside it outlive the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            std::mem::size_of::<T>(),
        )
    };
    if result < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// Loads the program for `rules`; the verifier's log is in the error. The
/// verifier gives up with `EAGAIN` when a signal is pending (vminitd gets a
/// `SIGCHLD` for every process that ends), so that is tried again.
fn load(rules: &[DeviceRule]) -> Result<OwnedFd, String> {
    let program = assemble(rules);
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"cz_device");
    let mut attempts = 0;
    let fd = loop {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: u32::try_from(program.len()).unwrap_or(u32::MAX),
            insns: program.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: u32::try_from(log.len()).unwrap_or(u32::MAX),
            log_buf: log.as_mut_ptr() as u64,
            prog_name: name,
            expected_attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => break fd,
            Err(err) if err.raw_os_error() == Some(libc::EAGAIN) && attempts < 20 => {
                attempts += 1;
            }
            Err(err) => {
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                return Err(format!(
                    "the kernel refused the device cgroup program: {err}: {}",
                    String::from_utf8_lossy(&log[..end]).trim()
                ));
            }
        }
    };
    let fd = i32::try_from(fd).map_err(|_| format!("bpf returned fd {fd}"))?;
    // SAFETY: BPF_PROG_LOAD returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The program of [`DEFAULT_RULES`], loaded (and verified) once for every
/// container.
static DEFAULT_PROGRAM: OnceLock<Result<OwnedFd, String>> = OnceLock::new();

/// Lets the processes of cgroup `group` reach only the devices
/// [`DEFAULT_RULES`] allow (the program stays attached after vminitd closes
/// its descriptor, until the group is removed).
pub(crate) fn restrict(group: &Path) -> Result<(), String> {
    let program = DEFAULT_PROGRAM
        .get_or_init(|| load(&DEFAULT_RULES))
        .as_ref()
        .map_err(Clone::clone)?;
    let dir = std::fs::File::open(group)
        .map_err(|err| format!("cannot open cgroup {}: {err}", group.display()))?;
    let mut attr = ProgAttachAttr {
        target_fd: dir.as_fd().as_raw_fd().cast_unsigned(),
        attach_bpf_fd: program.as_raw_fd().cast_unsigned(),
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|err| {
        format!(
            "cannot attach the device cgroup program to {}: {err}",
            group.display()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `program` as the kernel would, on one request.
    fn run(program: &[Instruction], typ: DeviceType, access: u32, major: u32, minor: u32) -> u32 {
        let mut r = [0u32; 6];
        let ctx = [(access << 16) | typ as u32, major, minor];
        let mut pc = 0;
        loop {
            let i = program[pc];
            let (dst, src) = (
                usize::from(i.registers & 0xf),
                usize::from(i.registers >> 4),
            );
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[usize::try_from(i.offset).unwrap() / 4],
                ALU32_AND_K => r[dst] &= i.immediate.cast_unsigned(),
                ALU32_RSH_K => r[dst] >>= i.immediate,
                ALU32_MOV_K => r[dst] = i.immediate.cast_unsigned(),
                ALU32_MOV_X => r[dst] = r[src],
                JMP32_JNE_K if r[dst] != i.immediate.cast_unsigned() => {
                    pc += usize::try_from(i.offset).unwrap();
                }
                JMP32_JNE_K => {}
                JMP_EXIT => return r[0],
                other => panic!("unknown opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn default_rules_allow_the_usual_devices_and_mknod_only() {
        let program = assemble(&DEFAULT_RULES);
        let allowed = |typ, access, major, minor| run(&program, typ, access, major, minor) == 1;
        use DeviceType::{Block, Char};
        for (major, minor) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)] {
            assert!(allowed(Char, READ | WRITE, major, minor), "{major}:{minor}");
        }
        assert!(allowed(Char, READ | WRITE, 136, 7));
        assert!(allowed(Char, READ, 10, 200));
        assert!(allowed(Char, MKNOD, 1, 1));
        assert!(allowed(Block, MKNOD, 254, 0));
        assert!(!allowed(Char, READ, 1, 1), "/dev/mem");
        assert!(!allowed(Char, WRITE, 5, 1), "/dev/console");
        assert!(!allowed(Block, READ, 254, 0), "a disk");
        assert!(
            !allowed(Block, READ, 1, 3),
            "a block device numbered as /dev/null"
        );
        assert!(!allowed(Char, READ | MKNOD, 10, 201));
        assert!(!allowed(Char, READ, 250, 1), "a virtio port");
    }
}
