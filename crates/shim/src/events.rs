//! Task events published to containerd (`/tasks/create`, `/tasks/start`,
//! `/tasks/exit`, `/tasks/delete`, and the exec ones), which `ctr` and the
//! CRI plugin wait on.

use std::time::SystemTime;

use containerd_shim::Context;
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::publisher::RemotePublisher;

/// Sends events for one namespace.
pub(crate) struct Events {
    publisher: RemotePublisher,
    namespace: String,
}

impl Events {
    /// Events published through `publisher` for `namespace`.
    pub fn new(publisher: RemotePublisher, namespace: String) -> Self {
        Self {
            publisher,
            namespace,
        }
    }

    /// Publishes `event` on `topic`; a failure is logged (containerd
    /// learns the state from the task API anyway).
    pub async fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let sent = self
            .publisher
            .publish(Context::default(), topic, &self.namespace, event)
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, topic, "cannot publish an event");
        }
    }
}

/// `time` as a protobuf timestamp.
pub(crate) fn timestamp(time: SystemTime) -> Timestamp {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut stamp = Timestamp::new();
    stamp.seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    stamp.nanos = i32::try_from(since.subsec_nanos()).unwrap_or(0);
    stamp
}
