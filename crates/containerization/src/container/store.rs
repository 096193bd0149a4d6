//! The containers' folders: `containers/<id>/` under the state root, holding
//! `config.json`, `state.json`, the writable disk and the output log. Names
//! are unique, checked under `containers/.lock`; each state change holds the
//! container's own `state.lock`.

use std::path::PathBuf;

use super::record::{ContainerConfig, ContainerState};
use crate::private_dir;
use crate::{ContainerId, Error, state_file};

/// The folder of every container.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    dir: PathBuf,
    run_dir: PathBuf,
}

impl ContainerStore {
    /// Containers kept in `dir` (the state root's `containers/`); their VMs'
    /// sockets go under `run_dir`, whose paths must stay short (a unix socket
    /// path has at most 107 bytes).
    pub fn new(dir: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            run_dir: run_dir.into(),
        }
    }

    /// The folder of container `id`.
    pub fn dir(&self, id: &ContainerId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    /// Its writable disk (a qcow2 overlay or a reflinked copy of the base).
    pub fn disk(&self, id: &ContainerId) -> PathBuf {
        self.dir(id).join("disk")
    }

    /// Its output log (see [`super::LogWriter`]).
    pub fn log(&self, id: &ContainerId) -> PathBuf {
        self.dir(id).join("output.log")
    }

    /// The file whose modification time its owner sets while it lives (see
    /// [`super::owner::Heartbeat`]).
    pub fn heartbeat(&self, id: &ContainerId) -> PathBuf {
        self.dir(id).join("owner.alive")
    }

    /// The VM's run folder: sockets, QMP, console log. Named by the first 16
    /// digits of the id to keep socket paths short.
    pub fn vm_dir(&self, id: &ContainerId) -> PathBuf {
        let short: String = id.as_str().chars().take(16).collect();
        self.run_dir.join(short)
    }

    /// Makes the run folders above the VM's own 0700 and this user's,
    /// refusing any that another user owns (one who owned a parent could
    /// swap the VM's folder); the VM's folder itself the vmm makes and
    /// checks when it starts the VM. Returns the VM's folder.
    pub fn prepare_vm_dir(&self, id: &ContainerId) -> Result<PathBuf, Error> {
        private_dir::ensure_run_dir(&self.run_dir)?;
        Ok(self.vm_dir(id))
    }

    fn config_path(&self, id: &ContainerId) -> PathBuf {
        self.dir(id).join("config.json")
    }

    fn state_path(&self, id: &ContainerId) -> PathBuf {
        self.dir(id).join("state.json")
    }

    /// Records a new container, refusing a name already taken.
    pub fn create(&self, config: &ContainerConfig) -> Result<(), Error> {
        let _lock = state_file::lock(&self.dir.join(".lock"))?;
        for record in self.records()? {
            let name = match &record {
                Record::Sound(existing, _) => Some(&existing.name),
                Record::Damaged(damaged) => damaged.config.as_ref().map(|c| &c.name),
                Record::InFlux => None,
            };
            if name == Some(&config.name) {
                return Err(Error::NameInUse(config.name.clone()));
            }
        }
        private_dir::ensure(&self.dir, private_dir::PRIVATE_DIR)?;
        private_dir::ensure(&self.dir(&config.id), private_dir::PRIVATE_DIR)?;
        let written =
            state_file::write_json(&self.state_path(&config.id), &ContainerState::created())
                .and_then(|()| state_file::write_json(&self.config_path(&config.id), config));
        if written.is_err() {
            // A full disk, say: no half record is left to be listed as dead.
            let _ = std::fs::remove_dir_all(self.dir(&config.id));
        }
        written
    }

    /// Renames container `id` to `name`, refusing a name already taken
    /// (its own is fine). The configuration is rewritten whole.
    pub fn rename(&self, id: &ContainerId, name: &str) -> Result<(), Error> {
        let _lock = state_file::lock(&self.dir.join(".lock"))?;
        for record in self.records()? {
            let other = match &record {
                Record::Sound(existing, _) if existing.id != *id => Some(&existing.name),
                Record::Damaged(damaged) => damaged.config.as_ref().map(|c| &c.name),
                _ => None,
            };
            if other.is_some_and(|other| other == name) {
                return Err(Error::NameInUse(name.to_owned()));
            }
        }
        let mut config = self.config(id)?;
        config.name = name.to_owned();
        state_file::write_json(&self.config_path(id), &config)
    }

    /// Changes container `id`'s configuration with `change`, under its
    /// state lock, if `allowed` says its state lets it.
    pub fn change_config(
        &self,
        id: &ContainerId,
        allowed: impl FnOnce(&ContainerState) -> Result<(), Error>,
        change: impl FnOnce(&mut ContainerConfig) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.update_checked(id, |state| {
            allowed(state)?;
            let mut config = self.config(id)?;
            change(&mut config)?;
            state_file::replace_json(&self.config_path(id), &config)
        })
        .map(|_| ())
    }

    /// The configuration of container `id`.
    pub fn config(&self, id: &ContainerId) -> Result<ContainerConfig, Error> {
        state_file::read_json(&self.config_path(id))?
            .ok_or_else(|| Error::ContainerNotFound(id.to_string()))
    }

    /// The state of container `id`.
    pub fn state(&self, id: &ContainerId) -> Result<ContainerState, Error> {
        state_file::read_json(&self.state_path(id))?
            .ok_or_else(|| Error::ContainerNotFound(id.to_string()))
    }

    /// Changes the state of container `id` under its lock and returns the
    /// new state.
    pub fn update(
        &self,
        id: &ContainerId,
        change: impl FnOnce(&mut ContainerState),
    ) -> Result<ContainerState, Error> {
        self.update_checked(id, |state| {
            change(state);
            Ok(())
        })
    }

    /// [`Self::update`] with a change that may refuse (a start or a copy
    /// claiming a container another process owns): the state is then left
    /// as it was, and the refusal returned.
    pub fn update_checked(
        &self,
        id: &ContainerId,
        change: impl FnOnce(&mut ContainerState) -> Result<(), Error>,
    ) -> Result<ContainerState, Error> {
        // The folder is not made again for a container removed meanwhile.
        if !self.dir(id).is_dir() {
            return Err(Error::ContainerNotFound(id.to_string()));
        }
        let _lock = state_file::lock(&self.dir(id).join("state.lock"))?;
        let mut state = self.state(id)?;
        change(&mut state)?;
        state_file::replace_json(&self.state_path(id), &state)?;
        Ok(state)
    }

    /// What the folder of container `id` holds now.
    pub(crate) fn record(&self, id: &ContainerId) -> Record {
        let config = state_file::read_json::<ContainerConfig>(&self.config_path(id));
        let state = state_file::read_json::<ContainerState>(&self.state_path(id));
        if let (Ok(Some(config)), Ok(Some(state))) = (&config, &state) {
            return Record::Sound(config.clone(), state.clone());
        }
        let missing = matches!(config, Ok(None)) || matches!(state, Ok(None));
        let corrupt = config.is_err() || state.is_err();
        if !self.dir(id).is_dir() || (missing && !corrupt && !self.settled(id)) {
            return Record::InFlux;
        }
        let mut problems = Vec::new();
        let config = readable(config, "config.json", &mut problems);
        let state = readable(state, "state.json", &mut problems);
        Record::Damaged(DamagedContainer {
            id: id.clone(),
            config,
            state,
            problem: problems.join("; "),
        })
    }

    /// Whether container `id`'s folder has been left alone long enough that
    /// a missing file is not one being written or removed right now.
    fn settled(&self, id: &ContainerId) -> bool {
        std::fs::metadata(self.dir(id))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > SETTLED)
    }

    /// Every container folder's record, oldest sound ones first, then the
    /// damaged ones; folders being made or removed are skipped.
    fn records(&self) -> Result<Vec<Record>, Error> {
        let mut all = Vec::new();
        for entry in self.entries()? {
            let Ok(id) = entry.file_name().to_string_lossy().parse::<ContainerId>() else {
                continue;
            };
            match self.record(&id) {
                Record::InFlux => {}
                record => all.push(record),
            }
        }
        all.sort_by_key(|record| match record {
            Record::Sound(config, _) => (0, config.created_ms),
            _ => (1, 0),
        });
        Ok(all)
    }

    /// Every container, oldest first. Folders being made or removed, and
    /// damaged ones ([`Self::list_damaged`]), are skipped.
    pub fn list(&self) -> Result<Vec<(ContainerConfig, ContainerState)>, Error> {
        Ok(self
            .records()?
            .into_iter()
            .filter_map(|record| match record {
                Record::Sound(config, state) => Some((config, state)),
                _ => None,
            })
            .collect())
    }

    /// Every container whose records cannot be read (Docker's `Dead`).
    pub fn list_damaged(&self) -> Result<Vec<DamagedContainer>, Error> {
        Ok(self
            .records()?
            .into_iter()
            .filter_map(|record| match record {
                Record::Damaged(damaged) => Some(damaged),
                _ => None,
            })
            .collect())
    }

    /// The entries of the containers' folder; none before it exists.
    fn entries(&self) -> Result<Vec<std::fs::DirEntry>, Error> {
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => Ok(entries.flatten().collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(Error::Io {
                path: self.dir.clone(),
                source,
            }),
        }
    }

    /// The configuration of every container whose configuration can be
    /// read, damaged ones too, oldest sound ones first.
    fn readable_configs(&self) -> Result<Vec<ContainerConfig>, Error> {
        Ok(self
            .records()?
            .into_iter()
            .filter_map(|record| match record {
                Record::Sound(config, _) => Some(config),
                Record::Damaged(damaged) => damaged.config,
                Record::InFlux => None,
            })
            .collect())
    }

    /// The containers, damaged ones too where their configuration is
    /// readable, whose configuration `wanted` accepts, as `(id, name)`.
    fn configs_where(
        &self,
        wanted: impl Fn(&ContainerConfig) -> bool,
    ) -> Result<Vec<(ContainerId, String)>, Error> {
        Ok(self
            .readable_configs()?
            .into_iter()
            .filter(|config| wanted(config))
            .map(|config| (config.id, config.name))
            .collect())
    }

    /// The ids of the containers (damaged ones too) that use volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>, Error> {
        let users = self.configs_where(|config| config.volumes.iter().any(|v| v.name == name))?;
        Ok(users.into_iter().map(|(id, _)| id.to_string()).collect())
    }

    /// The containers whose configuration names network `network`, as
    /// `(id, name)`: a network they need to start.
    pub fn using_network(&self, network: &str) -> Result<Vec<(ContainerId, String)>, Error> {
        self.configs_where(|config| config.joins(network))
    }

    /// The containers made from image `name` (as the image store names it),
    /// or from the manifest `digest`, as `(id, name)`; damaged ones too
    /// where their configuration is readable.
    pub fn using_image(
        &self,
        name: &str,
        digest: &str,
    ) -> Result<Vec<(ContainerId, String)>, Error> {
        self.configs_where(|config| config.image == name || config.manifest == digest)
    }

    /// The container a user means by `name_or_id`: a name, a full id, or a
    /// prefix of one id; damaged containers too, by id or by a name still
    /// readable.
    pub fn lookup(&self, name_or_id: &str) -> Result<ContainerId, Error> {
        let all: Vec<(ContainerId, Option<String>)> = self
            .records()?
            .into_iter()
            .filter_map(|record| match record {
                Record::Sound(config, _) => Some((config.id, Some(config.name))),
                Record::Damaged(damaged) => {
                    Some((damaged.id, damaged.config.map(|config| config.name)))
                }
                Record::InFlux => None,
            })
            .collect();
        if let Some((id, _)) = all
            .iter()
            .find(|(id, name)| name.as_deref() == Some(name_or_id) || id.as_str() == name_or_id)
        {
            return Ok(id.clone());
        }
        let matches: Vec<_> = all
            .iter()
            .filter(|(id, _)| !name_or_id.is_empty() && id.as_str().starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [(id, _)] => Ok(id.clone()),
            [] => Err(Error::ContainerNotFound(name_or_id.to_owned())),
            _ => Err(Error::InvalidOption {
                option: "container".to_owned(),
                detail: format!(
                    "{name_or_id:?} is the start of {} container ids; give more digits",
                    matches.len()
                ),
            }),
        }
    }

    /// The disk of every container folder, whatever state its records are
    /// in (being made, damaged): what keeps bases in use.
    pub fn all_disks(&self) -> Result<Vec<PathBuf>, Error> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .map(|entry| entry.path().join("disk"))
            .collect())
    }

    /// The manifest digest of every container whose configuration can be
    /// read, damaged ones too.
    pub fn manifests_in_use(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .readable_configs()?
            .into_iter()
            .map(|config| config.manifest)
            .collect())
    }

    /// Removes container `id`'s folder and VM run folder, then the base it
    /// was the last user of, if its image is gone too (unless images are
    /// being pulled at that moment: `cctl image prune` takes it then).
    pub fn remove(&self, id: &ContainerId) -> Result<(), Error> {
        self.remove_with(id, |_| Ok(()))
    }

    /// [`Self::remove`], unless a copy started meanwhile holds it (another
    /// live process owns it with `copying` set): checked under its state
    /// lock, held while the folder goes, so a copy cannot claim it half
    /// removed. Any other owner still alive is a monitor finishing after
    /// its container ended, which does not stop a removal.
    pub fn remove_unowned(&self, id: &ContainerId, name: &str) -> Result<(), Error> {
        self.remove_with(id, |state| match state {
            Some(state)
                if state.copying
                    && state.owner_alive()
                    && state.owner_pid != Some(std::process::id()) =>
            {
                Err(Error::InvalidState {
                    container: name.to_owned(),
                    state: "being copied to or from".to_owned(),
                    detail: "a copy (cctl cp) holds it; try again when it ends".to_owned(),
                })
            }
            _ => Ok(()),
        })
    }

    fn remove_with(
        &self,
        id: &ContainerId,
        check: impl FnOnce(Option<&ContainerState>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let _lock = match self.dir(id).is_dir() {
            true => Some(state_file::lock(&self.dir(id).join("state.lock"))?),
            false => None,
        };
        check(self.state(id).ok().as_ref())?;
        let _ = std::fs::remove_dir_all(self.vm_dir(id));
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: dir, source }),
        }
        if let Some(root) = self.dir.parent() {
            let root = crate::StateRoot::new(root);
            if let Err(error) = crate::rootfs::collect_unused(&root, false) {
                tracing::warn!(%error, "cannot remove the root file systems no one uses");
            }
        }
        Ok(())
    }
}

/// How long a container folder with a missing file must be left alone before
/// it counts as damaged rather than being made or removed.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(60);

/// What a container's folder holds.
pub(crate) enum Record {
    /// A readable configuration and state.
    Sound(ContainerConfig, ContainerState),
    /// Records that cannot be read.
    Damaged(DamagedContainer),
    /// A folder being made or removed right now.
    InFlux,
}

/// A container whose `config.json` or `state.json` cannot be read (truncated,
/// say): listed as dead, and removable with what it held released as far as
/// its readable parts tell.
#[derive(Debug, Clone)]
pub struct DamagedContainer {
    /// Its id, from its folder's name.
    pub id: ContainerId,
    /// Its configuration, when that part is readable.
    pub config: Option<ContainerConfig>,
    /// Its state, when that part is readable.
    pub state: Option<ContainerState>,
    /// What cannot be read, and why.
    pub problem: String,
}

/// The readable value of a record file, or why it is not.
fn readable<T>(
    read: Result<Option<T>, Error>,
    file: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    match read {
        Ok(Some(value)) => Some(value),
        Ok(None) => {
            problems.push(format!("{file} is missing"));
            None
        }
        Err(Error::CorruptState { detail, .. }) => {
            problems.push(format!("{file} is corrupt ({detail})"));
            None
        }
        Err(error) => {
            problems.push(format!("{file} cannot be read ({error})"));
            None
        }
    }
}

/// A new container id: 64 hexadecimal digits from the kernel's random source.
pub(crate) fn new_id() -> Result<ContainerId, Error> {
    ContainerId::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(id: &ContainerId, name: &str, created_ms: u64) -> ContainerConfig {
        ContainerConfig {
            id: id.clone(),
            name: name.into(),
            image: "busybox".into(),
            manifest: "sha256:00".into(),
            spec: serde_json::json!({}),
            stop_signal: 15,
            network: crate::NetworkMode::None,
            ports: vec![],
            dns: vec![],
            kernel: None,
            vcpus: 1,
            vm_memory_mib: 256,
            read_only: false,
            auto_remove: false,
            disposable: false,
            terminal: false,
            interactive: false,
            created_ms,
            platform: None,
            volumes: Vec::new(),
            binds: Vec::new(),
            pod: None,
            pod_tmpfs: Vec::new(),
            labels: Default::default(),
            restart: Default::default(),
            aliases: Vec::new(),
            more_networks: Vec::new(),
        }
    }

    #[test]
    fn names_are_unique_and_lookup_takes_names_ids_and_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContainerStore::new(dir.path().join("containers"), dir.path().join("run"));
        let a: ContainerId = "abc123".parse().unwrap();
        let b: ContainerId = "abd456".parse().unwrap();
        store.create(&config(&a, "web", 1)).unwrap();
        store.create(&config(&b, "db", 2)).unwrap();
        let err = store
            .create(&config(&"ffff".parse().unwrap(), "web", 3))
            .unwrap_err();
        assert!(matches!(err, Error::NameInUse(_)), "{err}");
        let taken = store.rename(&a, "db").unwrap_err();
        assert!(matches!(taken, Error::NameInUse(_)), "{taken}");
        store.rename(&a, "web").unwrap();
        store.rename(&a, "front").unwrap();
        assert_eq!(store.config(&a).unwrap().name, "front");
        store.rename(&a, "web").unwrap();
        assert_eq!(store.lookup("web").unwrap(), a);
        assert_eq!(store.lookup("abd").unwrap(), b);
        assert!(
            store
                .lookup("ab")
                .unwrap_err()
                .to_string()
                .contains("more digits")
        );
        assert!(matches!(
            store.lookup("nope").unwrap_err(),
            Error::ContainerNotFound(_)
        ));
        let names: Vec<_> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|(c, _)| c.name)
            .collect();
        assert_eq!(names, ["web", "db"]);
        store.remove(&a).unwrap();
        assert!(store.lookup("web").is_err());
    }

    #[test]
    fn new_ids_are_64_hex_digits_and_differ() {
        let (a, b) = (new_id().unwrap(), new_id().unwrap());
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
