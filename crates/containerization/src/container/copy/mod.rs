//! Copies between the host and a container, running or stopped, with
//! Docker's rules (`docker cp`): [`LinuxContainer::copy_to_host`],
//! [`LinuxContainer::copy_from_host`], and the tar-stream forms
//! [`LinuxContainer::copy_out_archive`] and
//! [`LinuxContainer::copy_in_archive`].
//!
//! Paths in the container are its own view. A running container's are
//! resolved by its agent under its first process's root (`/proc/<pid>/root`,
//! its volumes, host paths and tmpfs mounts included); a stopped one gets a
//! copy VM of its own for the copy ([`stopped`]). Both ends resolve every
//! path inside a root descriptor (`containerization_archive`): in the
//! guest the container's root, on the host the destination itself, so
//! neither a symlink in the container nor an archive coming out of it can
//! reach past them.
//!
//! Owners: files copied in belong to root (0:0) unless
//! [`CopyOptions::archive`] keeps the source's; files copied out belong to
//! the caller, with set-user-id and set-group-id bits of files cleared
//! (a file the caller owns must not run as the caller because a container
//! said so), unless `archive` keeps the container's owners and bits.

mod guest;
mod rules;
mod stopped;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use containerization_agent::proto::v1::{CopyRoot, copy_root};
pub use containerization_archive::{Kind as PathKind, PathInfo};
use containerization_archive::{Kind, Rebase, Root, UnpackOptions};

use super::linux_container::LinuxContainer;
use crate::Error;
use guest::GuestView;
use rules::{Existing, Landing};
use stopped::CopyVm;

/// How a copy treats owners and symlinks (`docker cp -a -L`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// Keep the source's owners (uid and gid), `-a`.
    pub archive: bool,
    /// Follow a symlink named as the source, `-L`.
    pub follow_link: bool,
}

/// The top entry's name in archives the guest sends for the host to unpack.
const TOP: &str = "top";

impl LinuxContainer {
    /// Runs `work` on this container's tree: through its agent when it
    /// runs, else in a copy VM booted for it and stopped afterwards.
    async fn with_tree<T>(
        &self,
        work: impl AsyncFnOnce(&GuestView) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some((agent, vsock)) = self.running_agent().await? {
            let view = GuestView {
                agent,
                vsock,
                root: CopyRoot {
                    root: Some(copy_root::Root::ContainerId(self.process_id().to_owned())),
                },
            };
            return work(&view).await;
        }
        let vm = CopyVm::start(self).await?;
        let result = match vm.view() {
            Ok(view) => work(&view).await,
            Err(error) => Err(error),
        };
        vm.stop().await;
        result
    }

    /// What `path` is in the container, or Docker's "Could not find the file".
    async fn stat_source(&self, view: &GuestView, path: &str, follow: bool) -> Result<Kind, Error> {
        view.stat(path, follow)
            .await?
            .map(|info| info.kind)
            .ok_or_else(|| Error::PathNotInContainer {
                path: path.to_owned(),
                container: self.config().name.clone(),
            })
    }

    /// What `path` in the container is (kind, mode, size, owner, time, a
    /// symlink's target; `docker cp`'s stat), or `None` when nothing is
    /// there. A stopped container gets a copy VM for it, as for a copy.
    pub async fn stat_path(
        &self,
        path: &str,
        follow_link: bool,
    ) -> Result<Option<PathInfo>, Error> {
        self.with_tree(async |view| view.stat(path, follow_link).await)
            .await
    }

    /// Copies `source` in the container to `destination` on the host, with
    /// Docker's rules for where it lands.
    ///
    /// ```no_run
    /// use containerization::{ContainerManager, CopyOptions, StateRoot};
    ///
    /// # async fn demo() -> Result<(), containerization::Error> {
    /// let root = StateRoot::from_env()?;
    /// let manager = ContainerManager::new(root.clone(), root.find_vminitd()?);
    /// let web = manager.get("web")?;
    /// web.copy_to_host("/etc/nginx", "/tmp/nginx-conf".as_ref(), &CopyOptions::default())
    ///     .await?;
    /// web.copy_from_host("site/.".as_ref(), "/usr/share/nginx/html", &CopyOptions::default())
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn copy_to_host(
        &self,
        source: &str,
        destination: &Path,
        options: &CopyOptions,
    ) -> Result<(), Error> {
        let follow = options.follow_link;
        let source = source.to_owned();
        let destination = destination.to_path_buf();
        let archive = options.archive;
        self.with_tree(async |view| {
            let is_dir = self.stat_source(view, &source, follow).await? == Kind::Directory;
            let (root, to) = host_landing(&source, is_dir, &destination)?;
            view.receive(&source, TOP, follow, move |reader| {
                let root = Root::open(&root)?;
                let options = UnpackOptions {
                    keep_owners: archive,
                    keep_devices: false,
                    drop_setid_of_new_owner: true,
                    rebase: Some(Rebase {
                        from: TOP.into(),
                        to,
                    }),
                };
                containerization_archive::unpack(&root, Path::new(""), reader, &options)?;
                Ok(())
            })
            .await
        })
        .await
    }

    /// Writes `source` in the container to `out` as a tar stream whose top
    /// entry is named after it (`cctl cp CONTAINER:SRC -`).
    pub async fn copy_out_archive(
        &self,
        source: &str,
        mut out: impl Write + Send + 'static,
        options: &CopyOptions,
    ) -> Result<(), Error> {
        let follow = options.follow_link;
        let name = match rules::base_name(source) {
            name if name.is_empty() => ".".to_owned(),
            name => name,
        };
        self.with_tree(async |view| {
            self.stat_source(view, source, follow).await?;
            view.receive(source, &name, follow, move |reader| {
                std::io::copy(reader, &mut out)
                    .and_then(|_| out.flush())
                    .map_err(|source| Error::Io {
                        path: PathBuf::from("-"),
                        source,
                    })?;
                Ok(())
            })
            .await
        })
        .await
    }

    /// Copies `source` on the host to `destination` in the container, with
    /// Docker's rules for where it lands. A read-only root refuses it.
    pub async fn copy_from_host(
        &self,
        source: &Path,
        destination: &str,
        options: &CopyOptions,
    ) -> Result<(), Error> {
        let written = source.to_string_lossy().into_owned();
        let meta = match options.follow_link {
            true => std::fs::metadata(source),
            false => std::fs::symlink_metadata(source),
        };
        let is_dir = match meta {
            Ok(meta) => meta.is_dir(),
            Err(error) => {
                return Err(Error::CopyRefused(format!(
                    "no such file or directory on the host: {} ({error})",
                    source.display()
                )));
            }
        };
        let source = source.to_path_buf();
        let options = *options;
        self.with_tree(async |view| {
            let existing = Existing::of(view.stat(destination, true).await?.map(|i| i.kind));
            let landing = rules::landing(&written, is_dir, destination, existing)?;
            let (folder, name) = match landing {
                Landing::Into => (destination.to_owned(), ".".to_owned()),
                Landing::Under(name) => (destination.to_owned(), name),
                Landing::At => {
                    let parent = rules::parent(destination);
                    let kind = self.stat_source(view, &parent, true).await?;
                    if kind != Kind::Directory {
                        return Err(Error::CopyRefused(format!("{parent} is not a directory")));
                    }
                    (parent, rules::base_name(destination))
                }
            };
            let (root, inside) = match name.as_str() {
                "." => (source.clone(), PathBuf::from(".")),
                _ => (
                    source
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."))
                        .to_path_buf(),
                    PathBuf::from(source.file_name().unwrap_or(source.as_os_str())),
                ),
            };
            view.send(&folder, options.archive, move |out| {
                let root = Root::open(&root)?;
                containerization_archive::pack(
                    &root,
                    &inside,
                    Path::new(&name),
                    options.follow_link,
                    out,
                )?;
                Ok(())
            })
            .await
        })
        .await
    }

    /// Unpacks the tar stream `archive` into folder `destination` in the
    /// container (`cctl cp - CONTAINER:DEST`).
    pub async fn copy_in_archive(
        &self,
        mut archive: impl Read + Send + 'static,
        destination: &str,
        options: &CopyOptions,
    ) -> Result<(), Error> {
        let keep_owners = options.archive;
        self.with_tree(async |view| {
            if self.stat_source(view, destination, true).await? != Kind::Directory {
                return Err(Error::CopyRefused(format!(
                    "destination {destination} must be a directory to extract an archive into"
                )));
            }
            view.send(destination, keep_owners, move |out| {
                std::io::copy(&mut archive, out).map_err(|source| Error::Io {
                    path: PathBuf::from("-"),
                    source,
                })?;
                Ok(())
            })
            .await
        })
        .await
    }
}

/// Where a copy out lands on the host: the folder to unpack in (made when
/// the rules say so) and what the archive's top entry becomes in it.
fn host_landing(
    source: &str,
    is_dir: bool,
    destination: &Path,
) -> Result<(PathBuf, PathBuf), Error> {
    let existing = match std::fs::metadata(destination) {
        Ok(meta) if meta.is_dir() => Existing::Directory,
        Ok(_) => Existing::Other,
        Err(_) => Existing::Missing,
    };
    let written = destination.to_string_lossy();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    match rules::landing(source, is_dir, &written, existing)? {
        Landing::Into => Ok((destination.to_path_buf(), PathBuf::new())),
        Landing::Under(name) if is_dir => {
            let target = destination.join(&name);
            match std::fs::symlink_metadata(&target) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(Error::CopyRefused(format!(
                        "cannot overwrite non-directory {} with directory",
                        target.display()
                    )));
                }
                Err(_) => std::fs::create_dir(&target).map_err(io(&target))?,
            }
            Ok((target, PathBuf::new()))
        }
        Landing::Under(name) => Ok((destination.to_path_buf(), PathBuf::from(name))),
        Landing::At => {
            let parent = destination
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(Error::CopyRefused(format!(
                    "destination directory does not exist: {}",
                    parent.display()
                )));
            }
            if is_dir {
                std::fs::create_dir(destination).map_err(io(destination))?;
                return Ok((destination.to_path_buf(), PathBuf::new()));
            }
            let name = destination
                .file_name()
                .ok_or_else(|| Error::CopyRefused(format!("{written} names no file")))?;
            Ok((parent.to_path_buf(), PathBuf::from(name)))
        }
    }
}
