//! Mounts a user asks for (`--tmpfs`, `--mount`), typed, and as runtime
//! spec mounts.
//!
//! A tmpfs lives in the guest's memory, so it needs nothing from the host
//! and changes nothing in the VM's shape: containers with one still start
//! from templates. Its options are Podman's: `rw,nosuid,nodev`, mode 1777,
//! no size limit unless given (the kernel's default, half the VM's memory).
//! A named volume is one more disk of the VM (see [`crate::volume`]),
//! mounted by the guest at [`guest_volume_path`] and bound from there.
//! A host folder or file is a 9p share of the VM (see
//! `containerization_vmm::ShareConfig`), mounted by the guest at
//! [`guest_share_path`] and bound from there.
//!
//! ```
//! use containerization::spec::Mount;
//!
//! let run: Mount = Mount::parse_tmpfs_flag("/run:size=16m,mode=1770").unwrap();
//! assert_eq!(run.target(), "/run");
//! let same = Mount::parse_mount_flag("type=tmpfs,target=/run,tmpfs-size=16m,tmpfs-mode=1770");
//! assert_eq!(same.unwrap(), run);
//!
//! let site = Mount::parse_volume_flag("/srv/site:/usr/share/nginx/html:ro").unwrap();
//! assert!(matches!(site, Mount::Bind(ref bind) if bind.read_only));
//! ```

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Mount as SpecMount, MountBuilder};

use super::resources::parse_size;
use crate::Error;

/// A mount the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A tmpfs at `target`.
    Tmpfs(TmpfsMount),
    /// A named volume (see [`crate::volume`]), made on first use.
    Volume(VolumeMount),
    /// A host folder or file.
    Bind(BindMount),
}

/// A host folder or file mounted in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The host path (absolute, `.` and `..` resolved lexically).
    pub source: PathBuf,
    /// Where, in the container (absolute).
    pub target: String,
    /// Mounted read-only (the host refuses writes too).
    pub read_only: bool,
    /// A missing source is made as a folder (`-v`, as Docker does); with
    /// `--mount` it is an error.
    pub create_missing: bool,
}

/// Where the guest mounts its shared host paths (one 9p file system).
pub const GUEST_SHARES: &str = "/run/cz/shares";

/// Where a container's `index`th host folder or file is in the guest.
pub fn guest_share_path(index: usize) -> String {
    format!("{GUEST_SHARES}/{index}")
}

/// `path` made absolute against the working folder, `.` and `..` resolved
/// lexically (symlinks are the host's to follow when it is shared).
fn host_path(option: &str, path: &str) -> Result<PathBuf, Error> {
    if path.starts_with('~') {
        return Err(invalid(
            option,
            format!(
                "host path {path:?} starts with `~`, which only a shell expands: give the full path"
            ),
        ));
    }
    let given = Path::new(path);
    let absolute = match given.is_absolute() {
        true => given.to_path_buf(),
        false => std::env::current_dir()
            .map_err(|e| invalid(option, format!("cannot resolve {path:?}: {e}")))?
            .join(given),
    };
    let mut clean = PathBuf::from("/");
    for component in absolute.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if clean.as_os_str().as_encoded_bytes().contains(&b',') {
        return Err(invalid(
            option,
            format!("host path {path:?} contains a comma, which cannot be shared"),
        ));
    }
    Ok(clean)
}

fn parse_mode_word(option: &str, flag: &str, mode: &str) -> Result<bool, Error> {
    let mut read_only = false;
    for word in mode.split(',').filter(|w| !w.is_empty()) {
        match word {
            "rw" => read_only = false,
            "ro" => read_only = true,
            // SELinux relabelling and propagation: nothing to do in a VM.
            "z" | "Z" | "rprivate" | "private" => {}
            other => {
                return Err(invalid(
                    option,
                    format!("{flag:?}: unknown mode {other:?}; expected ro or rw"),
                ));
            }
        }
    }
    Ok(read_only)
}

/// A named volume mounted in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's name; `None` for an anonymous volume (`-v PATH`),
    /// named when the container is made and removed with it by `--rm` or
    /// `rm -v`, as Docker does.
    pub name: Option<String>,
    /// Where, in the container (absolute).
    pub target: String,
    /// Mounted read-only (any number of containers may).
    pub read_only: bool,
}

/// Where the guest mounts a container's `index`th volume, the source of
/// its bind mount in the spec.
pub fn guest_volume_path(index: usize) -> String {
    format!("/run/cz/volumes/{index}")
}

/// A tmpfs: memory of the VM, gone with the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    /// Where, in the container (absolute).
    pub target: String,
    /// Its size limit in bytes, or the kernel's default.
    pub size_bytes: Option<u64>,
    /// The mode of its root (1777 unless given).
    pub mode: Option<u32>,
    /// Mounted read-only.
    pub read_only: bool,
    /// Programs on it may not be executed.
    pub noexec: bool,
    /// In a pod, the name of the pod's tmpfs it shares with the pod's other
    /// containers that name it (`--mount type=tmpfs,source=NAME,…`, as a
    /// Kubernetes memory-backed `emptyDir`); `None`: its own.
    pub shared: Option<String>,
}

/// Where the guest of a pod mounts its shared tmpfs `name`.
pub fn guest_pod_tmpfs_path(name: &str) -> String {
    format!("/run/cz/pod/tmpfs/{name}")
}

fn invalid(option: &str, detail: String) -> Error {
    Error::InvalidOption {
        option: option.to_owned(),
        detail,
    }
}

/// `target` checked as Docker checks a container path: absolute, not `/`.
fn container_path(option: &str, target: &str) -> Result<String, Error> {
    if !target.starts_with('/') {
        return Err(invalid(
            option,
            format!("invalid container path {target:?}: it must be an absolute path"),
        ));
    }
    let clean: Vec<&str> = target
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if clean.contains(&"..") {
        return Err(invalid(
            option,
            format!("invalid container path {target:?}: `..` is not allowed"),
        ));
    }
    if clean.is_empty() {
        return Err(invalid(
            option,
            "a mount cannot replace the container's root `/`".to_owned(),
        ));
    }
    Ok(format!("/{}", clean.join("/")))
}

fn parse_mode(option: &str, text: &str) -> Result<u32, Error> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| {
            invalid(
                option,
                format!("mode {text:?} is not an octal mode (such as 1777)"),
            )
        })
}

impl Mount {
    /// Where the mount is, in the container.
    pub fn target(&self) -> &str {
        match self {
            Mount::Tmpfs(tmpfs) => &tmpfs.target,
            Mount::Volume(volume) => &volume.target,
            Mount::Bind(bind) => &bind.target,
        }
    }

    /// `-v SOURCE:TARGET[:ro|rw]` as Docker reads it: a SOURCE with a `/`
    /// or starting with `.` is a host path (a relative one is taken from the
    /// working folder, as Docker's CLI does since 23.0, and a missing one is
    /// made as a folder); another names a volume; `-v TARGET` alone is an
    /// anonymous volume.
    pub fn parse_volume_flag(flag: &str) -> Result<Self, Error> {
        const OPTION: &str = "--volume";
        let parts: Vec<&str> = flag.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [target] => {
                return Ok(Mount::Volume(VolumeMount {
                    name: None,
                    target: container_path(OPTION, target)?,
                    read_only: false,
                }));
            }
            [source, target] => (*source, *target, ""),
            [source, target, mode] => (*source, *target, *mode),
            _ => {
                return Err(invalid(
                    OPTION,
                    format!("{flag:?} is not SOURCE:TARGET[:ro|rw]"),
                ));
            }
        };
        let read_only = parse_mode_word(OPTION, flag, mode)?;
        if source.contains('/') || source.starts_with('.') || source.starts_with('~') {
            return Ok(Mount::Bind(BindMount {
                source: host_path(OPTION, source)?,
                target: container_path(OPTION, target)?,
                read_only,
                create_missing: true,
            }));
        }
        crate::volume::check_name(source)?;
        Ok(Mount::Volume(VolumeMount {
            name: Some(source.to_owned()),
            target: container_path(OPTION, target)?,
            read_only,
        }))
    }

    /// `--tmpfs PATH[:OPTIONS]`: options are `size=` (with k, m, g), `mode=`
    /// (octal), `ro`, `rw`, `exec`, `noexec`, comma-separated.
    pub fn parse_tmpfs_flag(flag: &str) -> Result<Self, Error> {
        const OPTION: &str = "--tmpfs";
        let (target, options) = flag.split_once(':').unwrap_or((flag, ""));
        let mut tmpfs = TmpfsMount {
            target: container_path(OPTION, target)?,
            size_bytes: None,
            mode: None,
            read_only: false,
            noexec: false,
            shared: None,
        };
        for option in options.split(',').filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                Some(("size", size)) => tmpfs.size_bytes = Some(parse_size(OPTION, size)?),
                Some(("mode", mode)) => tmpfs.mode = Some(parse_mode(OPTION, mode)?),
                None if option == "ro" => tmpfs.read_only = true,
                None if option == "rw" => tmpfs.read_only = false,
                None if option == "noexec" => tmpfs.noexec = true,
                None if option == "exec" => tmpfs.noexec = false,
                _ => {
                    return Err(invalid(
                        OPTION,
                        format!(
                            "unknown tmpfs option {option:?} in {flag:?}; \
                             known: size=, mode=, ro, rw, exec, noexec"
                        ),
                    ));
                }
            }
        }
        Ok(Mount::Tmpfs(tmpfs))
    }

    /// `--mount type=…,target=…[,…]` as Docker spells it: `type=tmpfs` with
    /// `tmpfs-size=`, `tmpfs-mode=`, `readonly`/`ro`; `destination` and
    /// `dst` for `target`. `type=bind` and `type=volume` are refused: not
    /// built yet.
    pub fn parse_mount_flag(flag: &str) -> Result<Self, Error> {
        const OPTION: &str = "--mount";
        let mut kind = None;
        let mut target = None;
        let mut source = None;
        let mut size_bytes = None;
        let mut mode = None;
        let mut read_only = false;
        for field in flag.split(',').filter(|f| !f.is_empty()) {
            let (key, value) = field.split_once('=').unwrap_or((field, ""));
            match key {
                "type" => kind = Some(value.to_owned()),
                "target" | "destination" | "dst" => target = Some(value.to_owned()),
                "source" | "src" => source = Some(value.to_owned()),
                "tmpfs-size" => size_bytes = Some(parse_size(OPTION, value)?),
                "tmpfs-mode" => mode = Some(parse_mode(OPTION, value)?),
                "readonly" | "ro" => {
                    read_only = match value {
                        "" | "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(invalid(
                                OPTION,
                                format!("{key}={value:?}: expected true or false"),
                            ));
                        }
                    }
                }
                _ => {
                    return Err(invalid(
                        OPTION,
                        format!("unknown field {key:?} in {flag:?}"),
                    ));
                }
            }
        }
        let target = target.ok_or_else(|| invalid(OPTION, format!("{flag:?} names no target=")))?;
        match kind.as_deref() {
            Some("tmpfs") => {
                if let Some(name) = &source {
                    crate::volume::check_name(name)?;
                }
            }
            Some("volume") => {
                // No source: an anonymous volume, as Docker makes one.
                if let Some(name) = &source {
                    crate::volume::check_name(name)?;
                }
                let name = source;
                return Ok(Mount::Volume(VolumeMount {
                    name,
                    target: container_path(OPTION, &target)?,
                    read_only,
                }));
            }
            Some("bind") => {
                let source = source.ok_or_else(|| {
                    invalid(OPTION, format!("{flag:?}: type=bind needs a source="))
                })?;
                return Ok(Mount::Bind(BindMount {
                    source: host_path(OPTION, &source)?,
                    target: container_path(OPTION, &target)?,
                    read_only,
                    create_missing: false,
                }));
            }
            Some(other) => {
                return Err(invalid(
                    OPTION,
                    format!("unknown mount type {other:?}; expected bind, volume or tmpfs"),
                ));
            }
            None => return Err(invalid(OPTION, format!("{flag:?} names no type="))),
        }
        Ok(Mount::Tmpfs(TmpfsMount {
            target: container_path(OPTION, &target)?,
            size_bytes,
            mode,
            read_only,
            noexec: false,
            shared: source,
        }))
    }

    /// The runtime spec's mount; a volume's or a host path's source is
    /// where the guest mounted it, `index` telling which of the container's
    /// volumes, or host paths, it is.
    pub fn to_spec(&self, index: usize) -> Result<SpecMount, Error> {
        match self {
            Mount::Bind(bind) => MountBuilder::default()
                .destination(bind.target.clone())
                .typ("bind")
                .source(guest_share_path(index))
                .options(vec![
                    "rbind".to_owned(),
                    "rprivate".to_owned(),
                    if bind.read_only { "ro" } else { "rw" }.to_owned(),
                ])
                .build()
                .map_err(|e| invalid("--volume", e.to_string())),
            Mount::Volume(volume) => MountBuilder::default()
                .destination(volume.target.clone())
                .typ("bind")
                .source(guest_volume_path(index))
                .options(vec![
                    "rbind".to_owned(),
                    if volume.read_only { "ro" } else { "rw" }.to_owned(),
                ])
                .build()
                .map_err(|e| invalid("--volume", e.to_string())),
            Mount::Tmpfs(TmpfsMount {
                target,
                read_only,
                shared: Some(name),
                ..
            }) => MountBuilder::default()
                .destination(target.clone())
                .typ("bind")
                .source(guest_pod_tmpfs_path(name))
                .options(vec![
                    "rbind".to_owned(),
                    "nosuid".to_owned(),
                    "nodev".to_owned(),
                    if *read_only { "ro" } else { "rw" }.to_owned(),
                ])
                .build()
                .map_err(|e| invalid("--mount", e.to_string())),
            Mount::Tmpfs(tmpfs) => {
                let mut options = vec![
                    if tmpfs.read_only { "ro" } else { "rw" }.to_owned(),
                    "nosuid".to_owned(),
                    "nodev".to_owned(),
                ];
                if tmpfs.noexec {
                    options.push("noexec".to_owned());
                }
                if let Some(size) = tmpfs.size_bytes {
                    options.push(format!("size={size}"));
                }
                options.push(format!("mode={:o}", tmpfs.mode.unwrap_or(0o1777)));
                MountBuilder::default()
                    .destination(tmpfs.target.clone())
                    .typ("tmpfs")
                    .source("tmpfs")
                    .options(options)
                    .build()
                    .map_err(|e| invalid("--tmpfs", e.to_string()))
            }
        }
    }
}

/// Refuses two of `mounts` on one target, as Docker does.
pub(crate) fn check_targets(mounts: &[Mount]) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for mount in mounts {
        if !seen.insert(mount.target()) {
            return Err(invalid(
                "--mount",
                format!("duplicate mount point: {}", mount.target()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpfs(mount: Mount) -> TmpfsMount {
        match mount {
            Mount::Tmpfs(tmpfs) => tmpfs,
            other => panic!("not a tmpfs: {other:?}"),
        }
    }

    #[test]
    fn volume_flags_name_volumes_and_refuse_what_is_not_built() {
        let v = Mount::parse_volume_flag("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            v,
            Mount::Volume(VolumeMount {
                name: Some("data".into()),
                target: "/var/lib/data".into(),
                read_only: true
            })
        );
        assert_eq!(
            Mount::parse_mount_flag("type=volume,source=data,target=/var/lib/data,readonly")
                .unwrap(),
            v
        );
        let anonymous = Mount::parse_volume_flag("/cache").unwrap();
        assert_eq!(
            anonymous,
            Mount::parse_mount_flag("type=volume,target=/cache").unwrap()
        );
        assert!(matches!(
            anonymous,
            Mount::Volume(VolumeMount { name: None, .. })
        ));
        let spec = v.to_spec(1).unwrap();
        assert_eq!(
            spec.source().as_ref().and_then(|s| s.to_str()),
            Some("/run/cz/volumes/1")
        );
        assert_eq!(spec.options().clone().unwrap(), vec!["rbind", "ro"]);
        for (flag, named) in [
            ("~/x:/ctr", "shell"),
            ("/a,b:/ctr", "comma"),
            ("data:/ctr:rx", "rx"),
            ("bad name:/ctr", "volume name"),
            ("data:relative", "absolute"),
        ] {
            let err = Mount::parse_volume_flag(flag).unwrap_err().to_string();
            assert!(err.contains(named), "{flag}: {err}");
        }
    }

    #[test]
    fn host_paths_are_binds_made_absolute() {
        let bind = |mount: Mount| match mount {
            Mount::Bind(bind) => bind,
            other => panic!("not a bind: {other:?}"),
        };
        let b = bind(Mount::parse_volume_flag("/srv/a/../site/:/www:ro,z").unwrap());
        assert_eq!(b.source, PathBuf::from("/srv/site"));
        assert_eq!(
            (b.target.as_str(), b.read_only, b.create_missing),
            ("/www", true, true)
        );
        let here = std::env::current_dir().unwrap();
        let rel = bind(Mount::parse_volume_flag("./conf:/etc/app").unwrap());
        assert_eq!(rel.source, here.join("conf"));
        let m = bind(Mount::parse_mount_flag("type=bind,src=/srv/site,dst=/www,readonly").unwrap());
        assert_eq!(
            (m.source.as_path(), m.read_only),
            (Path::new("/srv/site"), true)
        );
        assert!(!m.create_missing, "--mount never makes its source");
        let spec = Mount::Bind(m).to_spec(2).unwrap();
        assert_eq!(
            spec.source().as_deref(),
            Some(Path::new("/run/cz/shares/2"))
        );
        assert_eq!(
            spec.options().clone().unwrap(),
            vec!["rbind", "rprivate", "ro"]
        );
    }

    #[test]
    fn tmpfs_flags_take_podmans_defaults_and_docker_options() {
        let plain = tmpfs(Mount::parse_tmpfs_flag("/scratch").unwrap());
        assert_eq!(
            (plain.size_bytes, plain.mode, plain.read_only),
            (None, None, false)
        );
        let spec = Mount::parse_tmpfs_flag("/scratch")
            .unwrap()
            .to_spec(0)
            .unwrap();
        assert_eq!(spec.destination().to_str(), Some("/scratch"));
        assert_eq!(
            spec.options().clone().unwrap(),
            vec!["rw", "nosuid", "nodev", "mode=1777"]
        );
        let sized = Mount::parse_tmpfs_flag("/run:size=16m,mode=1770,ro,noexec").unwrap();
        let spec = sized.to_spec(0).unwrap();
        assert_eq!(
            spec.options().clone().unwrap(),
            vec![
                "ro",
                "nosuid",
                "nodev",
                "noexec",
                "size=16777216",
                "mode=1770"
            ]
        );
        assert_eq!(Mount::parse_tmpfs_flag("/a/./b/").unwrap().target(), "/a/b");
    }

    #[test]
    fn mount_flags_spell_tmpfs_as_docker_does() {
        let mount =
            Mount::parse_mount_flag("type=tmpfs,destination=/m,tmpfs-size=1m,tmpfs-mode=1770,ro")
                .unwrap();
        let tmpfs = tmpfs(mount);
        assert_eq!(tmpfs.target, "/m");
        assert_eq!(
            (tmpfs.size_bytes, tmpfs.mode, tmpfs.read_only),
            (Some(1 << 20), Some(0o1770), true)
        );
        let rw = tmpfs_of("type=tmpfs,dst=/x,readonly=false");
        assert!(!rw.read_only);
    }

    #[test]
    fn a_tmpfs_with_a_source_is_a_pods_shared_one_bound_from_the_guest() {
        let shared = tmpfs_of("type=tmpfs,source=scratch,target=/s,tmpfs-size=8m");
        assert_eq!(shared.shared.as_deref(), Some("scratch"));
        assert_eq!(shared.size_bytes, Some(8 << 20));
        let spec = Mount::Tmpfs(shared).to_spec(0).unwrap();
        assert_eq!(spec.typ().as_deref(), Some("bind"));
        assert_eq!(
            spec.source().as_deref(),
            Some(std::path::Path::new("/run/cz/pod/tmpfs/scratch"))
        );
        assert!(Mount::parse_mount_flag("type=tmpfs,source=../x,target=/s").is_err());
        assert_eq!(tmpfs_of("type=tmpfs,target=/s").shared, None);
    }

    fn tmpfs_of(flag: &str) -> TmpfsMount {
        tmpfs(Mount::parse_mount_flag(flag).unwrap())
    }

    #[test]
    fn bad_mounts_are_named() {
        let cases = [
            (Mount::parse_tmpfs_flag("rel"), "absolute"),
            (Mount::parse_tmpfs_flag("/"), "root"),
            (Mount::parse_tmpfs_flag("/a/../etc"), ".."),
            (Mount::parse_tmpfs_flag("/x:size=abc"), "abc"),
            (Mount::parse_tmpfs_flag("/x:mode=999"), "999"),
            (Mount::parse_tmpfs_flag("/x:uid=5"), "uid=5"),
            (
                Mount::parse_mount_flag("type=bind,target=/x"),
                "needs a source",
            ),
            (Mount::parse_mount_flag("type=nfs,target=/x"), "nfs"),
            (Mount::parse_mount_flag("target=/x"), "type="),
            (Mount::parse_mount_flag("type=tmpfs"), "target="),
            (
                Mount::parse_mount_flag("type=tmpfs,target=/x,colour=red"),
                "colour",
            ),
        ];
        for (result, named) in cases {
            let err = result.unwrap_err().to_string();
            assert!(err.contains(named), "{named}: {err}");
        }
        let twice = [
            Mount::parse_tmpfs_flag("/a").unwrap(),
            Mount::parse_mount_flag("type=tmpfs,target=/a/").unwrap(),
        ];
        let err = check_targets(&twice).unwrap_err().to_string();
        assert!(err.contains("duplicate mount point: /a"), "{err}");
    }
}
