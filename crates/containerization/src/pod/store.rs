//! The pods' folders: `pods/<id>/` under the state root, holding
//! `config.json` and `state.json`. Names are unique among pods, checked
//! under `pods/.lock`; each state change holds the pod's own `state.lock`.
//! A running pod's VM keeps its sockets in `p-<first 14 digits>` of the run
//! folder.

use std::path::PathBuf;

use super::record::{PodConfig, PodState};
use crate::{ContainerId, Error, private_dir, state_file};

/// The folder of every pod.
#[derive(Debug, Clone)]
pub struct PodStore {
    dir: PathBuf,
    run_dir: PathBuf,
}

impl PodStore {
    /// Pods kept in `dir` (the state root's `pods/`); their VMs' sockets go
    /// under `run_dir`.
    pub fn new(dir: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            run_dir: run_dir.into(),
        }
    }

    /// The folder of pod `id`.
    pub fn dir(&self, id: &ContainerId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    /// The file whose modification time its owner sets while it lives.
    pub fn heartbeat(&self, id: &ContainerId) -> PathBuf {
        self.dir(id).join("owner.alive")
    }

    /// The owner's log (its standard error).
    pub fn owner_log(&self, id: &ContainerId) -> PathBuf {
        self.dir(id).join("owner.log")
    }

    /// The VM's run folder: sockets, QMP, console log, the control socket.
    pub fn vm_dir(&self, id: &ContainerId) -> PathBuf {
        let short: String = id.as_str().chars().take(14).collect();
        self.run_dir.join(format!("p-{short}"))
    }

    /// Makes the run folder above the VM's own, private; returns the VM's.
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

    /// Records a new pod, refusing a name already taken.
    pub fn create(&self, config: &PodConfig) -> Result<(), Error> {
        private_dir::ensure(&self.dir, private_dir::PRIVATE_DIR)?;
        let _lock = state_file::lock(&self.dir.join(".lock"))?;
        if self.list()?.iter().any(|(c, _)| c.name == config.name) {
            return Err(Error::PodNameInUse(config.name.clone()));
        }
        private_dir::ensure(&self.dir(&config.id), private_dir::PRIVATE_DIR)?;
        let written = state_file::write_json(&self.state_path(&config.id), &PodState::created())
            .and_then(|()| state_file::write_json(&self.config_path(&config.id), config));
        if written.is_err() {
            let _ = std::fs::remove_dir_all(self.dir(&config.id));
        }
        written
    }

    /// The configuration of pod `id`.
    pub fn config(&self, id: &ContainerId) -> Result<PodConfig, Error> {
        state_file::read_json(&self.config_path(id))?
            .ok_or_else(|| Error::PodNotFound(id.to_string()))
    }

    /// The state of pod `id`.
    pub fn state(&self, id: &ContainerId) -> Result<PodState, Error> {
        state_file::read_json(&self.state_path(id))?
            .ok_or_else(|| Error::PodNotFound(id.to_string()))
    }

    /// Changes the state of pod `id` under its lock; a `check` that fails
    /// leaves it as it was.
    pub fn update_checked(
        &self,
        id: &ContainerId,
        change: impl FnOnce(&mut PodState) -> Result<(), Error>,
    ) -> Result<PodState, Error> {
        let _lock = state_file::lock(&self.dir(id).join("state.lock"))?;
        let mut state = self.state(id)?;
        change(&mut state)?;
        state_file::replace_json(&self.state_path(id), &state)?;
        Ok(state)
    }

    /// Changes the state of pod `id` under its lock.
    pub fn update(
        &self,
        id: &ContainerId,
        change: impl FnOnce(&mut PodState),
    ) -> Result<PodState, Error> {
        self.update_checked(id, |state| {
            change(state);
            Ok(())
        })
    }

    /// Every pod whose records can be read, oldest first.
    pub fn list(&self) -> Result<Vec<(PodConfig, PodState)>, Error> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut pods = Vec::new();
        for entry in entries.flatten() {
            let Ok(id) = entry.file_name().to_string_lossy().parse::<ContainerId>() else {
                continue;
            };
            match (self.config(&id), self.state(&id)) {
                (Ok(config), Ok(state)) => pods.push((config, state)),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::debug!(%id, %error, "a pod folder that cannot be read is skipped");
                }
            }
        }
        pods.sort_by_key(|(config, _)| config.created_ms);
        Ok(pods)
    }

    /// The pod a user means by `name_or_id`: a name, a full id, or a prefix
    /// of one id.
    pub fn lookup(&self, name_or_id: &str) -> Result<ContainerId, Error> {
        let all = self.list()?;
        if let Some((config, _)) = all
            .iter()
            .find(|(c, _)| c.name == name_or_id || c.id.as_str() == name_or_id)
        {
            return Ok(config.id.clone());
        }
        let matches: Vec<_> = all
            .iter()
            .filter(|(c, _)| !name_or_id.is_empty() && c.id.as_str().starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [(config, _)] => Ok(config.id.clone()),
            [] => Err(Error::PodNotFound(name_or_id.to_owned())),
            _ => Err(Error::InvalidOption {
                option: "pod".to_owned(),
                detail: format!(
                    "{name_or_id:?} is the start of {} pod ids; give more digits",
                    matches.len()
                ),
            }),
        }
    }

    /// The pods (id and name) configured on network `network`.
    pub fn using_network(&self, network: &str) -> Result<Vec<(ContainerId, String)>, Error> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|(config, _)| {
                matches!(&config.network, crate::container::NetworkMode::Network(n) if n == network)
            })
            .map(|(config, _)| (config.id, config.name))
            .collect())
    }

    /// Removes pod `id`'s folder and VM run folder.
    pub fn remove(&self, id: &ContainerId) -> Result<(), Error> {
        let _ = std::fs::remove_dir_all(self.vm_dir(id));
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io { path: dir, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::NetworkMode;

    fn config(id: &str, name: &str) -> PodConfig {
        PodConfig {
            id: id.parse().unwrap(),
            name: name.to_owned(),
            hostname: name.to_owned(),
            network: NetworkMode::None,
            ports: Vec::new(),
            dns: Vec::new(),
            kernel: None,
            vcpus: 1,
            vm_memory_mib: 256,
            created_ms: 1,
        }
    }

    #[test]
    fn names_are_unique_and_lookup_takes_names_ids_and_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let store = PodStore::new(dir.path().join("pods"), dir.path().join("run"));
        assert!(store.list().unwrap().is_empty());
        store.create(&config("aa11", "web")).unwrap();
        store.create(&config("ab22", "db")).unwrap();
        assert!(matches!(
            store.create(&config("cc33", "web")),
            Err(Error::PodNameInUse(name)) if name == "web"
        ));
        assert_eq!(store.lookup("web").unwrap().as_str(), "aa11");
        assert_eq!(store.lookup("ab").unwrap().as_str(), "ab22");
        assert!(store.lookup("a").is_err(), "two pods start with a");
        assert!(matches!(store.lookup("nope"), Err(Error::PodNotFound(_))));
        store
            .update(&"aa11".parse().unwrap(), |s| s.error = Some("x".into()))
            .unwrap();
        assert_eq!(
            store
                .state(&"aa11".parse().unwrap())
                .unwrap()
                .error
                .as_deref(),
            Some("x")
        );
        store.remove(&"aa11".parse().unwrap()).unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
    }
}
