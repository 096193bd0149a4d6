//! The shim's life: `start` (one shim per pod: containerd is given the
//! address of the pod's shim, started if it is not yet), the daemon that
//! serves the task API, and `delete`, which cleans up after a shim that
//! died.

use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::asynchronous::{ExitSignal, Shim, spawn};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Config, DeleteResponse, Error, Flags, StartOpts};

use crate::bundle::{self, Bundle};
use crate::events::timestamp;
use crate::task::TaskService;

/// The shim process.
pub(crate) struct CzShim {
    exit: Arc<ExitSignal>,
    id: String,
    namespace: String,
}

#[async_trait]
impl Shim for CzShim {
    type T = TaskService;

    async fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Self {
            exit: Arc::new(ExitSignal::default()),
            id: args.id.clone(),
            namespace: args.namespace.clone(),
        }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> Result<String, Error> {
        // containerd starts the shim in the task's bundle: its pod is the
        // sandbox it names, else its own.
        let grouping = std::env::current_dir()
            .ok()
            .and_then(|dir| Bundle::open(dir).ok())
            .and_then(|bundle| bundle.sandbox_id())
            .unwrap_or_else(|| opts.id.clone());
        spawn(opts, &grouping, Vec::new()).await
    }

    async fn delete_shim(&mut self) -> Result<DeleteResponse, Error> {
        // The shim of this task died: remove what it made, if anything.
        if let Ok(dir) = std::env::current_dir() {
            crate::task::clean_up_after(&dir).await;
            bundle::unmount_rootfs(&dir.join("rootfs"));
        }
        let mut response = DeleteResponse::new();
        response.exit_status = 128 + 9;
        response.exited_at = Some(timestamp(std::time::SystemTime::now())).into();
        tracing::debug!(id = %self.id, "cleaned up after a dead shim");
        Ok(response)
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        TaskService::new(Arc::clone(&self.exit), publisher, self.namespace.clone())
    }
}
