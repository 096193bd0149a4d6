//! The seam between the façade and a hypervisor: [`Hypervisor`] starts
//! [`VirtualMachine`]s. QEMU's microvm ([`crate::Qemu`]) is the first back
//! end; another (Cloud Hypervisor, Firecracker) would implement the same two
//! traits and reuse everything else, since the guest side (vminitd over
//! vsock) does not change.

use std::future::Future;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use containerization_agent::{AgentClient, Connector};

use crate::{VmConfig, VmmError, VsockEndpoint};

/// A way to run VMs.
pub trait Hypervisor {
    /// The VMs it runs.
    type Vm: VirtualMachine;

    /// A short name for logs and `cctl system check`.
    fn name(&self) -> &'static str;

    /// Validates `config`, boots the VM and returns once its agent answers,
    /// or fails with the console's last lines (a kernel panic is quoted).
    fn start(&self, config: &VmConfig) -> impl Future<Output = Result<Self::Vm, VmmError>> + Send;
}

/// How [`VirtualMachine::stop`] ended the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The agent shut the guest down and the hypervisor exited.
    Graceful,
    /// The guest did not stop in time; the hypervisor was told to quit.
    Quit,
    /// Nothing else worked: the hypervisor was killed.
    Killed,
    /// It had already exited.
    AlreadyStopped,
}

/// A running VM. Dropping it kills the hypervisor and its helpers.
pub trait VirtualMachine: Send {
    /// Where the guest's vsock is reached.
    fn vsock(&self) -> &VsockEndpoint;

    /// A connector to the guest's vsock ports (the agent, stdio streams).
    fn connector(&self) -> Arc<dyn Connector>;

    /// The agent, which answered when the VM started.
    fn agent(&self) -> Option<&AgentClient>;

    /// The file holding the serial console.
    fn console_log(&self) -> &Path;

    /// The last `lines` lines of the console.
    fn console_tail(&self, lines: usize) -> String;

    /// Asks the agent to shut the guest down and waits up to `timeout`; then
    /// tells the hypervisor to quit; then kills it.
    fn stop(&mut self, timeout: Duration) -> impl Future<Output = StopOutcome> + Send;

    /// Waits until the hypervisor exits (the guest powered off).
    fn wait(&mut self) -> impl Future<Output = Option<ExitStatus>> + Send;
}
