//! Naming a guest network interface in the network calls.

use crate::proto::v1::{InterfaceSelector, interface_selector::By};

impl InterfaceSelector {
    /// The interface called `name` (`eth0`).
    pub fn by_name(name: impl Into<String>) -> Self {
        Self {
            by: Some(By::Name(name.into())),
        }
    }

    /// The interface with hardware address `mac` (`02:42:ac:11:00:02`), as
    /// the host chose it for the VM's NIC.
    pub fn by_mac(mac: impl ToString) -> Self {
        Self {
            by: Some(By::Mac(mac.to_string())),
        }
    }
}
