//! Reading the host's OCI runtime spec: parsed once at the edge, with errors
//! that name the field, then checked for what the launcher cannot do.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

/// Parses `json` as a runtime spec (`config.json`). `what` names it in errors.
pub(crate) fn parse_spec(json: &[u8]) -> Result<Spec, String> {
    let spec: Spec = parse(json, "container spec")?;
    let process = spec
        .process()
        .as_ref()
        .ok_or("container spec: process is missing: say what to run")?;
    check_process(process, "container spec: process")?;
    if let Some(linux) = spec.linux()
        && let Some(namespaces) = linux.namespaces()
        && namespaces
            .iter()
            .any(|ns| ns.typ() == LinuxNamespaceType::User)
    {
        return Err("container spec: linux.namespaces: user namespaces are not supported".into());
    }
    super::seccomp::check(&spec).map_err(|m| format!("container spec: {m}"))?;
    Ok(spec)
}

/// Parses `json` as the `process` object of a spec, for an exec.
pub(crate) fn parse_process(json: &[u8]) -> Result<Process, String> {
    let process: Process = parse(json, "exec process")?;
    check_process(&process, "exec process")?;
    Ok(process)
}

/// The container's root file system: `rootfs` when given, else the spec's
/// `root.path`; it must be an existing folder.
pub(crate) fn rootfs(spec: &Spec, rootfs: &str) -> Result<PathBuf, String> {
    let path = if rootfs.is_empty() {
        spec.root()
            .as_ref()
            .map(|root| root.path().clone())
            .filter(|path| !path.as_os_str().is_empty())
            .ok_or("container spec: root.path is empty and no rootfs was given")?
    } else {
        PathBuf::from(rootfs)
    };
    if !path.is_absolute() {
        return Err(format!(
            "rootfs {}: must be an absolute path in the guest",
            path.display()
        ));
    }
    if !Path::new(&path).is_dir() {
        return Err(format!("rootfs {}: no such directory", path.display()));
    }
    Ok(path)
}

fn parse<T: serde::de::DeserializeOwned>(json: &[u8], what: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." {
            format!("{what}: {inner}")
        } else {
            format!("{what}: {path}: {inner}")
        }
    })
}

fn check_process(process: &Process, what: &str) -> Result<(), String> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.first().is_none_or(String::is_empty) {
        return Err(format!("{what}.args is empty: name the program to run"));
    }
    if let Some(bad) = process
        .env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|kv| !kv.contains('='))
    {
        return Err(format!("{what}.env: entry {bad:?} is not KEY=VALUE"));
    }
    if !process.cwd().is_absolute() {
        return Err(format!(
            "{what}.cwd: {} is not an absolute path",
            process.cwd().display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_type_names_the_field() {
        let err = parse_spec(br#"{"ociVersion": "1.0.2", "process": {"args": 5, "cwd": "/", "user": {"uid": 0, "gid": 0}}}"#)
            .unwrap_err();
        assert!(err.contains("process.args"), "{err}");
    }

    #[test]
    fn empty_args_are_refused() {
        let err = parse_spec(br#"{"ociVersion": "1.0.2", "process": {"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}}"#)
            .unwrap_err();
        assert!(err.contains("process.args is empty"), "{err}");
    }

    #[test]
    fn a_missing_rootfs_is_named() {
        let spec =
            parse_spec(br#"{"ociVersion": "1.0.2", "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}}}"#)
                .unwrap();
        let err = rootfs(&spec, "/nonexistent/rootfs").unwrap_err();
        assert_eq!(err, "rootfs /nonexistent/rootfs: no such directory");
    }
}
