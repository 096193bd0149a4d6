//! Docker's rules for where a copy lands, as pure functions of what the
//! source and destination are: a file onto a missing path makes that file,
//! onto a file replaces it, into a folder goes in under its name; a folder
//! onto a missing path makes it, into a folder goes in under its name
//! (`SRC/.`: its contents go in), onto a file is refused; a destination
//! ending in `/` must be a folder when the source is a file.

use containerization_archive::Kind;

use crate::Error;

/// What a destination is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Nothing is there.
    Missing,
    /// A folder.
    Directory,
    /// Anything else (a file, a symlink that was not followed, a device).
    Other,
}

impl Existing {
    /// What a path of `kind` (if any) is as a destination.
    pub fn of(kind: Option<Kind>) -> Self {
        match kind {
            None => Self::Missing,
            Some(Kind::Directory) => Self::Directory,
            Some(_) => Self::Other,
        }
    }
}

/// Where a copy lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Landing {
    /// The source's contents go into the destination folder itself.
    Into,
    /// The source lands in the destination folder under this name.
    Under(String),
    /// The source replaces or makes the destination: it lands in the
    /// destination's parent folder under the destination's last name.
    At,
}

/// Whether a path given by the user asks for a folder's contents (`SRC/.`).
pub(crate) fn wants_contents(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// The last name of `path` as the user wrote it (`a/b/` is `b`), with
/// `/.` left off.
pub(crate) fn base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches("/.").trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

/// Docker's rule for a source that is a folder or not (`source_is_dir`,
/// `source` as written) onto `destination` (as written) that is
/// `existing`.
pub(crate) fn landing(
    source: &str,
    source_is_dir: bool,
    destination: &str,
    existing: Existing,
) -> Result<Landing, Error> {
    match (existing, source_is_dir) {
        (Existing::Directory, true) if wants_contents(source) => Ok(Landing::Into),
        (Existing::Directory, _) => Ok(Landing::Under(base_name(source))),
        (Existing::Other, true) => Err(Error::CopyRefused(format!(
            "cannot copy a directory to a file: {destination} is not a directory"
        ))),
        (Existing::Other, false) if destination.ends_with('/') => Err(Error::CopyRefused(format!(
            "{destination} is not a directory"
        ))),
        (Existing::Other, false) => Ok(Landing::At),
        (Existing::Missing, false) if destination.ends_with('/') => Err(Error::CopyRefused(
            format!("destination directory does not exist: {destination}"),
        )),
        (Existing::Missing, _) => Ok(Landing::At),
    }
}

/// `path`'s parent folder as the user wrote it (`/` for `/x`, `.` for `x`).
pub(crate) fn parent(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(at) => trimmed[..at].to_owned(),
        None => ".".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_lands_as_docker_puts_it() {
        let file = |dest: &str, existing| landing("/a/f", false, dest, existing);
        assert_eq!(file("/x", Existing::Missing).unwrap(), Landing::At);
        assert_eq!(file("/x", Existing::Other).unwrap(), Landing::At);
        assert_eq!(
            file("/x", Existing::Directory).unwrap(),
            Landing::Under("f".into())
        );
        let err = file("/x/", Existing::Missing).unwrap_err().to_string();
        assert!(
            err.contains("destination directory does not exist"),
            "{err}"
        );
    }

    #[test]
    fn a_folder_lands_as_docker_puts_it() {
        let dir = |src: &str, existing| landing(src, true, "/x", existing);
        assert_eq!(dir("/a/d", Existing::Missing).unwrap(), Landing::At);
        assert_eq!(
            dir("/a/d/", Existing::Directory).unwrap(),
            Landing::Under("d".into())
        );
        assert_eq!(dir("/a/d/.", Existing::Directory).unwrap(), Landing::Into);
        let err = dir("/a/d", Existing::Other).unwrap_err().to_string();
        assert!(err.contains("cannot copy a directory to a file"), "{err}");
    }

    #[test]
    fn names_and_parents_as_written() {
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/a/b/."), "b");
        assert_eq!(parent("/x"), "/");
        assert_eq!(parent("/a/b/"), "/a");
        assert_eq!(parent("rel"), ".");
    }
}
