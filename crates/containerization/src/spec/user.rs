//! The user a container's process runs as: `-u`, else the image's `User`,
//! else root.
//!
//! Names are resolved inside the VM: `vminitd` looks `process.user.username`
//! (`name`, `uid`, `name:group`, `uid:gid`) up in the container's own
//! `/etc/passwd` and `/etc/group`. Only a fully numeric `uid:gid` needs no
//! look-up and goes straight into `uid` and `gid`. A lone numeric `uid` still
//! travels as a username, so that `vminitd` takes its primary group from
//! `/etc/passwd` as Docker does (and 0 when the uid has no entry).

use oci_spec::runtime::User;

use crate::Error;

/// The spec's user for `-u` (`flag`) or, without it, the image's `User`.
pub(crate) fn user(flag: Option<&str>, image: Option<&str>) -> Result<User, Error> {
    let (text, option) = match (flag, image) {
        (Some(text), _) => (text, "--user"),
        (None, Some(text)) if !text.is_empty() => (text, "image User"),
        (None, _) => return Ok(User::default()),
    };
    let bad = |detail: String| Error::InvalidOption {
        option: option.into(),
        detail,
    };
    let mut parts = text.split(':');
    let who = parts.next().unwrap_or_default();
    let group = parts.next();
    if parts.next().is_some() {
        return Err(bad(format!(
            "{text:?} has more than one ':'; write name, uid, name:group or uid:gid"
        )));
    }
    if who.is_empty() || group.is_some_and(str::is_empty) {
        return Err(bad(format!(
            "{text:?} is missing a user or group; write name, uid, name:group or uid:gid"
        )));
    }
    let mut user = User::default();
    match (who.parse::<u32>(), group.map(str::parse::<u32>)) {
        (Ok(uid), Some(Ok(gid))) => {
            user.set_uid(uid);
            user.set_gid(gid);
        }
        (Ok(uid), None) => {
            user.set_uid(uid);
            user.set_username(Some(text.to_owned()));
        }
        _ => {
            user.set_username(Some(text.to_owned()));
        }
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_user_anywhere_is_root() {
        let root = user(None, None).unwrap();
        assert_eq!(
            (root.uid(), root.gid(), root.username().clone()),
            (0, 0, None)
        );
        assert_eq!(user(None, Some("")).unwrap(), root);
    }

    #[test]
    fn numeric_uid_and_gid_are_set_directly() {
        let u = user(Some("1000:100"), None).unwrap();
        assert_eq!((u.uid(), u.gid(), u.username().clone()), (1000, 100, None));
    }

    #[test]
    fn numeric_uid_alone_keeps_the_username_for_its_group() {
        let u = user(Some("1000"), None).unwrap();
        assert_eq!(u.uid(), 1000);
        assert_eq!(u.username().as_deref(), Some("1000"));
    }

    #[test]
    fn names_go_to_username_for_vminitd() {
        for text in ["app", "app:staff", "1000:staff", "app:100"] {
            let u = user(Some(text), None).unwrap();
            assert_eq!(u.username().as_deref(), Some(text));
            assert_eq!((u.uid(), u.gid()), (0, 0));
        }
    }

    #[test]
    fn flag_wins_over_the_image() {
        let u = user(Some("app"), Some("nobody")).unwrap();
        assert_eq!(u.username().as_deref(), Some("app"));
        let u = user(None, Some("nobody")).unwrap();
        assert_eq!(u.username().as_deref(), Some("nobody"));
    }

    #[test]
    fn empty_user_and_extra_colons_are_refused() {
        for text in ["", ":100", "app:", "a:b:c"] {
            let err = user(Some(text), None).unwrap_err();
            assert!(err.to_string().starts_with("invalid --user: "), "{err}");
        }
        let err = user(None, Some("a:b:c")).unwrap_err();
        assert!(err.to_string().starts_with("invalid image User: "), "{err}");
    }
}
