//! binfmt_misc registration: foreign-architecture binaries run through an
//! interpreter (an emulator such as `qemu-aarch64-static`) the kernel starts
//! for them.
//!
//! The registration line is `:name:M:offset:magic:mask:interpreter:flags`,
//! magic and mask written as `\xHH` escapes so any byte is allowed.

use std::fmt::Write as _;
use std::path::Path;

use containerization_agent::proto::v1::RegisterBinfmtRequest;
use tonic::Status;

/// Where the kernel's binfmt_misc file system lives.
const BINFMT: &str = "/proc/sys/fs/binfmt_misc";

/// The registration line for `request`, checked.
pub(crate) fn registration(request: &RegisterBinfmtRequest) -> Result<String, Status> {
    let invalid = |message: String| Status::invalid_argument(message);
    let name = &request.name;
    if name.is_empty() || name.contains(['/', ':']) || name == "." || name == ".." {
        return Err(invalid(format!(
            "binfmt name {name:?} is empty or holds '/' or ':'"
        )));
    }
    if request.magic.is_empty() {
        return Err(invalid(format!("binfmt {name}: magic is empty")));
    }
    if !request.mask.is_empty() && request.mask.len() != request.magic.len() {
        return Err(invalid(format!(
            "binfmt {name}: mask is {} bytes, magic {}: they must match",
            request.mask.len(),
            request.magic.len()
        )));
    }
    if request.offset >= 128 || request.offset as usize + request.magic.len() > 128 {
        return Err(invalid(format!(
            "binfmt {name}: offset and magic must fit in the first 128 bytes"
        )));
    }
    let interpreter = &request.interpreter;
    if !interpreter.starts_with('/') || interpreter.contains(':') {
        return Err(invalid(format!(
            "binfmt {name}: interpreter {interpreter:?} must be an absolute path without ':'"
        )));
    }
    if let Some(bad) = request.flags.chars().find(|c| !"POCF".contains(*c)) {
        return Err(invalid(format!(
            "binfmt {name}: flag {bad:?} is not one of P, O, C, F"
        )));
    }
    Ok(format!(
        ":{name}:M:{}:{}:{}:{interpreter}:{}",
        request.offset,
        escape(&request.magic),
        escape(&request.mask),
        request.flags
    ))
}

fn escape(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "\\x{b:02x}");
        out
    })
}

/// Mounts binfmt_misc when needed and registers `request`.
pub(crate) fn register(request: &RegisterBinfmtRequest) -> Result<(), Status> {
    let line = registration(request)?;
    let register = Path::new(BINFMT).join("register");
    if !register.exists() {
        rustix::mount::mount(
            "binfmt_misc",
            BINFMT,
            "binfmt_misc",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .map_err(|e| Status::failed_precondition(format!("mount binfmt_misc on {BINFMT}: {e}")))?;
    }
    std::fs::write(&register, line.as_bytes())
        .map_err(|e| Status::failed_precondition(format!("register binfmt {}: {e}", request.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_escapes_magic_and_mask() {
        let line = registration(&RegisterBinfmtRequest {
            name: "aarch64".into(),
            magic: vec![0x7f, b'E', b'L', b'F'],
            mask: vec![0xff, 0xff, 0xff, 0xfe],
            offset: 0,
            interpreter: "/usr/bin/qemu-aarch64-static".into(),
            flags: "F".into(),
        })
        .unwrap();
        assert_eq!(
            line,
            ":aarch64:M:0:\\x7f\\x45\\x4c\\x46:\\xff\\xff\\xff\\xfe:/usr/bin/qemu-aarch64-static:F"
        );
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let base = RegisterBinfmtRequest {
            name: "x".into(),
            magic: vec![1, 2],
            interpreter: "/i".into(),
            ..Default::default()
        };
        let err = registration(&RegisterBinfmtRequest {
            mask: vec![1],
            ..base.clone()
        })
        .unwrap_err();
        assert!(err.message().contains("mask"), "{err}");
        let err = registration(&RegisterBinfmtRequest {
            interpreter: "qemu".into(),
            ..base
        })
        .unwrap_err();
        assert!(err.message().contains("absolute"), "{err}");
    }
}
