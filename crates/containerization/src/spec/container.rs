//! The whole runtime spec of a container: its process, hostname, root,
//! Docker's default mounts, namespaces and path protections, and resource
//! limits.
//!
//! The image's `ExposedPorts` and `Volumes` are not applied here (ports are
//! published by the host's network code; anonymous volumes are not created);
//! its `StopSignal` is read with [`stop_signal`] by whoever stops the
//! container.

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Linux, Root, Spec};

use super::mounts::{Mount, check_targets};
use super::process::{ProcessOptions, build};
use super::{defaults, resources};
use crate::Error;

/// What the user asked for the container, `docker run`'s flags.
#[derive(Debug, Clone, Default)]
pub struct ContainerOptions {
    /// The container's hostname, also its `HOSTNAME` unless the user sets
    /// that.
    pub hostname: String,
    /// `--read-only`: mount the root file system read-only.
    pub read_only: bool,
    /// `--memory`, in bytes (see [`super::parse_memory`]); 0 or `None` for no
    /// limit, else at least 6 MiB.
    pub memory_bytes: Option<u64>,
    /// `--cpus`: how many CPUs' worth of time, above 0 (at least 0.01).
    pub cpus: Option<f64>,
    /// The process's options.
    pub process: ProcessOptions,
    /// Mounts (`--tmpfs`, `--mount`), over Docker's defaults: one on a
    /// default's target (`/dev/shm`, say) replaces it.
    pub mounts: Vec<Mount>,
}

/// The runtime spec for a container of `config` with `options`; `host_env`
/// looks up the host's environment for `-e KEY` and bare env-file keys.
///
/// The root path is `rootfs`, which the host replaces with where it mounts
/// the container's root file system in the VM.
pub fn container_spec(
    config: &ImageConfiguration,
    options: &ContainerOptions,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec, Error> {
    if options.hostname.is_empty() {
        return Err(Error::InvalidOption {
            option: "--hostname".into(),
            detail: "the hostname is empty; give one (Docker uses the first 12 characters \
                     of the container id)"
                .into(),
        });
    }
    let process = build(config, &options.process, host_env, Some(&options.hostname))?;

    let mut root = Root::default();
    root.set_path("rootfs".into())
        .set_readonly(Some(options.read_only));

    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(defaults::namespaces()))
        .set_masked_paths(Some(defaults::masked_paths()))
        .set_readonly_paths(Some(defaults::readonly_paths()))
        .set_resources(resources::resources(options.memory_bytes, options.cpus)?);

    check_targets(&options.mounts)?;
    let mut mounts = defaults::mounts();
    mounts.retain(|default| {
        !options
            .mounts
            .iter()
            .any(|m| default.destination().as_os_str() == m.target())
    });
    let (mut volumes, mut binds) = (0, 0);
    for mount in &options.mounts {
        match mount {
            Mount::Volume(_) => {
                mounts.push(mount.to_spec(volumes)?);
                volumes += 1;
            }
            Mount::Bind(_) => {
                mounts.push(mount.to_spec(binds)?);
                binds += 1;
            }
            Mount::Tmpfs(_) => mounts.push(mount.to_spec(0)?),
        }
    }

    let mut spec = Spec::default();
    spec.set_process(Some(process))
        .set_hostname(Some(options.hostname.clone()))
        .set_root(Some(root))
        .set_mounts(Some(mounts))
        .set_annotations(None)
        .set_linux(Some(linux));
    Ok(spec)
}

/// The image's `StopSignal` (`SIGTERM`, `SIGQUIT`, `SIGRTMIN+3`…), if it
/// names one; Docker sends `SIGTERM` otherwise.
pub fn stop_signal(config: &ImageConfiguration) -> Option<String> {
    config
        .config()
        .as_ref()
        .and_then(|c| c.stop_signal().clone())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use oci_spec::runtime::LinuxNamespaceType;

    use super::*;

    fn image(config: &str) -> ImageConfiguration {
        serde_json::from_str(&format!(
            r#"{{"architecture":"amd64","os":"linux",
                "rootfs":{{"type":"layers","diff_ids":[]}},"config":{config}}}"#
        ))
        .unwrap()
    }

    fn options() -> ContainerOptions {
        ContainerOptions {
            hostname: "c0ffee".into(),
            ..Default::default()
        }
    }

    fn spec_for(config: &str, options: &ContainerOptions) -> Spec {
        container_spec(&image(config), options, &|_| None).unwrap()
    }

    #[test]
    fn hostname_is_set_and_exported() {
        let spec = spec_for(r#"{"Cmd":["sh"]}"#, &options());
        assert_eq!(spec.hostname().as_deref(), Some("c0ffee"));
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert_eq!(env[1], "HOSTNAME=c0ffee");
    }

    #[test]
    fn users_hostname_variable_wins() {
        let mut options = options();
        options.process.env = vec!["HOSTNAME=mine".into()];
        let spec = spec_for(r#"{"Cmd":["sh"]}"#, &options);
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"HOSTNAME=mine".to_owned()));
        assert!(!env.contains(&"HOSTNAME=c0ffee".to_owned()));
    }

    #[test]
    fn empty_hostname_is_refused() {
        let err = container_spec(&image(r#"{"Cmd":["sh"]}"#), &Default::default(), &|_| None)
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid --hostname: "), "{err}");
    }

    #[test]
    fn root_is_rootfs_and_follows_read_only() {
        let spec = spec_for(r#"{"Cmd":["sh"]}"#, &options());
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), Path::new("rootfs"));
        assert_eq!(root.readonly(), Some(false));
        let mut read_only = options();
        read_only.read_only = true;
        let spec = spec_for(r#"{"Cmd":["sh"]}"#, &read_only);
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    }

    #[test]
    fn no_network_namespace_and_dockers_path_protections() {
        let spec = spec_for(r#"{"Cmd":["sh"]}"#, &options());
        let linux = spec.linux().as_ref().unwrap();
        let namespaces = linux.namespaces().clone().unwrap();
        assert!(
            namespaces
                .iter()
                .all(|n| n.typ() != LinuxNamespaceType::Network)
        );
        assert!(
            namespaces
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Pid)
        );
        let masked = linux.masked_paths().clone().unwrap();
        for path in [
            "/proc/kcore",
            "/proc/keys",
            "/sys/firmware",
            "/proc/timer_list",
        ] {
            assert!(masked.iter().any(|p| p == path), "{path}");
        }
        let readonly = linux.readonly_paths().clone().unwrap();
        assert!(readonly.iter().any(|p| p == "/proc/sysrq-trigger"));
        assert_eq!(linux.resources(), &None);
    }

    #[test]
    fn dockers_default_mounts() {
        let spec = spec_for(r#"{"Cmd":["sh"]}"#, &options());
        let destinations: Vec<_> = spec
            .mounts()
            .clone()
            .unwrap()
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
    }

    #[test]
    fn limits_go_into_resources() {
        let mut limited = options();
        limited.memory_bytes = Some(64 * 1024 * 1024);
        limited.cpus = Some(2.0);
        let spec = spec_for(r#"{"Cmd":["sh"]}"#, &limited);
        let resources = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(resources.memory().unwrap().limit(), Some(64 * 1024 * 1024));
        assert_eq!(resources.cpu().clone().unwrap().quota(), Some(200_000));
    }

    #[test]
    fn small_memory_is_refused() {
        let mut limited = options();
        limited.memory_bytes = Some(1024 * 1024);
        let err = container_spec(&image(r#"{"Cmd":["sh"]}"#), &limited, &|_| None).unwrap_err();
        assert!(
            err.to_string()
                .contains("Minimum memory limit allowed is 6MB"),
            "{err}"
        );
    }

    #[test]
    fn spec_round_trips_through_json_as_vminitd_reads_it() {
        let mut full = options();
        full.memory_bytes = Some(128 * 1024 * 1024);
        full.cpus = Some(0.5);
        full.process.terminal = true;
        full.process.user = Some("app:staff".into());
        let spec = spec_for(
            r#"{"Entrypoint":["/entry"],"Cmd":["run"],"Env":["A=1"],"WorkingDir":"/app"}"#,
            &full,
        );
        let json = serde_json::to_string(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["process"]["user"]["username"], "app:staff");
        assert_eq!(
            value["process"]["args"],
            serde_json::json!(["/entry", "run"])
        );
        assert!(value["process"].get("capabilities").is_none());
    }

    #[test]
    fn stop_signal_comes_from_the_image() {
        assert_eq!(
            stop_signal(&image(r#"{"StopSignal":"SIGQUIT"}"#)).as_deref(),
            Some("SIGQUIT")
        );
        assert_eq!(stop_signal(&image(r#"{"Cmd":["sh"]}"#)), None);
    }
}
