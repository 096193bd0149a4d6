//! The user a container process runs as, resolved against the container's
//! own `/etc/passwd` and `/etc/group` (read after `pivot_root`, so the
//! guest's files never leak in).
//!
//! The spec's `process.user` carries numbers; its `username`, when set, is the
//! image's `User` as the host received it: `name`, `uid`, `name:group` or
//! `uid:gid`, resolved here. Supplementary groups are the user's memberships
//! in `/etc/group` plus the spec's `additionalGids`.

use oci_spec::runtime::User;

use super::channel::{Failure, FailureKind};

/// Who to become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// User id.
    pub(crate) uid: u32,
    /// Primary group id.
    pub(crate) gid: u32,
    /// Supplementary groups.
    pub(crate) groups: Vec<u32>,
    /// The home folder from `/etc/passwd`, for `HOME`.
    pub(crate) home: Option<String>,
}

/// One `/etc/passwd` line.
#[derive(Debug)]
struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// Resolves `user` against `passwd` and `group` (their contents; empty when
/// the files are missing).
pub(crate) fn resolve(user: &User, passwd: &str, group: &str) -> Result<Identity, Failure> {
    let users = parse_passwd(passwd);
    let (uid, gid, entry) = match user.username().as_deref().filter(|s| !s.is_empty()) {
        None => {
            let entry = users.iter().find(|p| p.uid == user.uid());
            (user.uid(), user.gid(), entry)
        }
        Some(spec) => {
            let (who, group_part) = match spec.split_once(':') {
                Some((who, g)) => (who, Some(g)),
                None => (spec, None),
            };
            let entry = match who.parse::<u32>() {
                Ok(uid) => users.iter().find(|p| p.uid == uid),
                Err(_) => Some(users.iter().find(|p| p.name == who).ok_or_else(|| {
                    Failure::new(
                        FailureKind::InvalidArgument,
                        format!("user {who:?}: no such user in the container's /etc/passwd"),
                    )
                })?),
            };
            let uid = match who.parse::<u32>() {
                Ok(uid) => uid,
                Err(_) => entry.map_or(0, |p| p.uid),
            };
            let gid = match group_part {
                Some(g) => match g.parse::<u32>() {
                    Ok(gid) => gid,
                    Err(_) => group_id(group, g)?,
                },
                None => entry.map_or(0, |p| p.gid),
            };
            (uid, gid, entry)
        }
    };
    let mut groups: Vec<u32> = entry
        .map(|p| memberships(group, &p.name))
        .unwrap_or_default();
    groups.extend(user.additional_gids().as_deref().unwrap_or_default());
    groups.sort_unstable();
    groups.dedup();
    Ok(Identity {
        uid,
        gid,
        groups,
        home: entry.map(|p| p.home.clone()),
    })
}

fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(Passwd {
                name: (*fields.first()?).to_owned(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
                home: fields.get(5).copied().unwrap_or("/").to_owned(),
            })
        })
        .collect()
}

/// `(name, gid, members)` of each `/etc/group` line.
fn groups(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let members = fields
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((*fields.first()?, fields.get(2)?.parse().ok()?, members))
    })
}

fn group_id(text: &str, name: &str) -> Result<u32, Failure> {
    groups(text)
        .find(|(n, _, _)| *n == name)
        .map(|(_, gid, _)| gid)
        .ok_or_else(|| {
            Failure::new(
                FailureKind::InvalidArgument,
                format!("group {name:?}: no such group in the container's /etc/group"),
            )
        })
}

fn memberships(text: &str, user: &str) -> Vec<u32> {
    groups(text)
        .filter(|(_, _, members)| members.contains(&user))
        .map(|(_, gid, _)| gid)
        .collect()
}

/// Switches the calling thread (the launcher has one) to `identity`.
/// Capabilities survive (`PR_SET_KEEPCAPS`) so the caller can then set the
/// spec's sets.
pub(crate) fn become_user(identity: &Identity) -> Result<(), Failure> {
    use rustix::process::{Gid, Uid};
    let groups: Vec<Gid> = identity.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    rustix::thread::set_keep_capabilities(true)
        .map_err(|e| Failure::io("keep capabilities", &e.into()))?;
    rustix::thread::set_thread_groups(&groups).map_err(|e| Failure::io("setgroups", &e.into()))?;
    let gid = Gid::from_raw(identity.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid)
        .map_err(|e| Failure::io(format!("setgid {}", identity.gid), &e.into()))?;
    let uid = Uid::from_raw(identity.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid)
        .map_err(|e| Failure::io(format!("setuid {}", identity.uid), &e.into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          app:x:1000:1000:app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app,root\nstaff:x:50:app\n";

    fn user(json: &str) -> User {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_name_resolves_with_its_groups_and_home() {
        let id = resolve(
            &user(r#"{"uid":0,"gid":0,"username":"app"}"#),
            PASSWD,
            GROUP,
        )
        .unwrap();
        assert_eq!(
            id,
            Identity {
                uid: 1000,
                gid: 1000,
                groups: vec![10, 50],
                home: Some("/home/app".into())
            }
        );
    }

    #[test]
    fn uid_gid_pairs_and_group_names_resolve() {
        let id = resolve(
            &user(r#"{"uid":0,"gid":0,"username":"1000:staff"}"#),
            PASSWD,
            GROUP,
        )
        .unwrap();
        assert_eq!((id.uid, id.gid), (1000, 50));
        let id = resolve(
            &user(r#"{"uid":0,"gid":0,"username":"4242:4343"}"#),
            PASSWD,
            GROUP,
        )
        .unwrap();
        assert_eq!((id.uid, id.gid, id.groups), (4242, 4343, vec![]));
    }

    #[test]
    fn numbers_and_additional_gids() {
        let id = resolve(
            &user(r#"{"uid":0,"gid":0,"additionalGids":[7]}"#),
            PASSWD,
            GROUP,
        )
        .unwrap();
        assert_eq!((id.uid, id.gid, id.groups), (0, 0, vec![7, 10]));
    }

    #[test]
    fn an_unknown_name_is_refused() {
        let err = resolve(
            &user(r#"{"uid":0,"gid":0,"username":"ghost"}"#),
            PASSWD,
            GROUP,
        )
        .unwrap_err();
        assert!(err.message.contains("no such user"), "{}", err.message);
    }
}
