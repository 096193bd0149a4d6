//! Capabilities: the five sets of the spec, or Docker's default set when the
//! spec gives none.
//!
//! The bounding set is cut before the user change (that needs
//! `CAP_SETPCAP`, which the change may drop); the other sets are set after
//! it, the launcher having kept its capabilities across `setuid`.

use std::collections::HashSet;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, Spec};

use super::channel::Failure;

/// Docker's default: what a container gets when the spec says nothing.
const DEFAULT: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// The five sets a process ends up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapabilitySets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl CapabilitySets {
    /// The spec's sets, or Docker's default (inheritable and ambient empty).
    /// Names this kernel or crate does not know are left out.
    pub(crate) fn from_spec(spec: &Spec) -> Self {
        let given = spec
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone());
        match given {
            None => {
                let default: CapsHashSet = DEFAULT.into_iter().collect();
                Self {
                    bounding: default.clone(),
                    effective: default.clone(),
                    permitted: default,
                    inheritable: HashSet::new(),
                    ambient: HashSet::new(),
                }
            }
            Some(caps) => Self {
                bounding: convert(caps.bounding().as_ref()),
                effective: convert(caps.effective().as_ref()),
                permitted: convert(caps.permitted().as_ref()),
                inheritable: convert(caps.inheritable().as_ref()),
                ambient: convert(caps.ambient().as_ref()),
            },
        }
    }

    /// Whether `cap` stays in the bounding set.
    pub(crate) fn bounds(&self, cap: Capability) -> bool {
        self.bounding.contains(&cap)
    }

    /// Drops every capability outside the bounding set. Before the user change.
    pub(crate) fn apply_bounding(&self) -> Result<(), Failure> {
        for cap in caps::runtime::thread_all_supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                    Failure::io(
                        format!("drop {cap} from the bounding set"),
                        &std::io::Error::other(e.to_string()),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Sets the inheritable, permitted, effective and ambient sets. After the
    /// user change.
    pub(crate) fn apply_rest(&self) -> Result<(), Failure> {
        let set = |which: CapSet, value: &CapsHashSet| {
            caps::set(None, which, value).map_err(|e| {
                Failure::io(
                    format!("set the {which:?} capabilities"),
                    &std::io::Error::other(e.to_string()),
                )
            })
        };
        // Inheritable first (while CAP_SETPCAP may still be effective), then
        // effective before permitted: the effective set must stay a subset
        // of the permitted one at every step.
        set(CapSet::Inheritable, &self.inheritable)?;
        set(CapSet::Effective, &self.effective)?;
        set(CapSet::Permitted, &self.permitted)?;
        caps::clear(None, CapSet::Ambient).map_err(|e| {
            Failure::io(
                "clear ambient capabilities",
                &std::io::Error::other(e.to_string()),
            )
        })?;
        for cap in &self.ambient {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|e| {
                Failure::io(
                    format!("raise ambient {cap}"),
                    &std::io::Error::other(e.to_string()),
                )
            })?;
        }
        Ok(())
    }
}

fn convert(caps: Option<&Capabilities>) -> CapsHashSet {
    let supported = caps::runtime::thread_all_supported();
    caps.into_iter()
        .flatten()
        .filter_map(|cap| format!("CAP_{cap}").parse::<Capability>().ok())
        .filter(|cap| supported.contains(cap))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_capabilities_in_the_spec_means_dockers_default() {
        let spec: Spec =
            serde_json::from_str(r#"{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}}}"#)
                .unwrap();
        let sets = CapabilitySets::from_spec(&spec);
        assert!(sets.bounds(Capability::CAP_CHOWN));
        assert!(!sets.bounds(Capability::CAP_NET_ADMIN));
        assert!(!sets.bounds(Capability::CAP_SYS_ADMIN));
        assert!(sets.inheritable.is_empty() && sets.ambient.is_empty());
    }

    #[test]
    fn spec_names_map_to_capabilities() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0},
               "capabilities":{"bounding":["CAP_NET_ADMIN","CAP_SYS_ADMIN"]}}}"#,
        )
        .unwrap();
        let sets = CapabilitySets::from_spec(&spec);
        assert!(sets.bounds(Capability::CAP_NET_ADMIN));
        assert!(sets.bounds(Capability::CAP_SYS_ADMIN));
        assert!(!sets.bounds(Capability::CAP_CHOWN));
        assert!(sets.effective.is_empty());
    }
}
