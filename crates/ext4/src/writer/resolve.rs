//! Resolving an entry's path inside the image as if the image were `/`, the
//! rule of `chroot` and `openat2(RESOLVE_IN_ROOT)`, which the host-side
//! unpacker follows too:
//!
//! - every name but the last is a directory on the way; a symlink there is
//!   followed, an absolute target starting at the image root;
//! - `..` in a symlink's target goes to the parent of the directory reached
//!   (after symlinks), and at the root stays at the root, so a path never
//!   leaves the image; `..` in an entry's own path is refused;
//! - a missing directory on the way is made when an entry is added (so a
//!   dangling symlink's target directory is made inside the image), and
//!   ends a lookup;
//! - a name on the way that is neither a directory nor a symlink is an
//!   error, and so is going through more than 40 symlinks;
//! - the last name is never followed: an entry replaces a symlink at its
//!   path, it never writes through it.
//!
//! The walk keeps the names still to visit on a stack of its own, so deep
//! paths and symlink chains never recurse.

use std::borrow::Cow;

use super::display;
use super::tree::{Body, Tree, check_name};
use crate::format::ROOT_INODE;
use crate::{Error, Result};

/// Symlinks one path may go through, as Linux allows.
pub(crate) const SYMLINK_BUDGET: u32 = 40;

/// Where a [`Walk`] stopped.
pub(crate) enum Stop<'p> {
    /// Every name was walked: the directory reached.
    Arrived(u32),
    /// The directory `dir` has no entry `name`: make it and
    /// [`enter`](Walk::enter) it to go on, or give up.
    Missing { dir: u32, name: Cow<'p, [u8]> },
}

/// A walk from the image root through directory names, following symlinks.
pub(crate) struct Walk<'n, 'p> {
    /// The whole entry path, for error messages.
    path: &'p [u8],
    /// The names to walk, all of them directories on the way.
    names: &'n [&'p [u8]],
    /// The next of `names` to visit.
    next: usize,
    /// Names from symlink targets still to visit (the next on top), each
    /// with the index in `names` of the symlink that brought it.
    linked: Vec<(Cow<'p, [u8]>, usize)>,
    /// The directory reached so far.
    at: u32,
    /// Symlinks followed so far.
    hops: u32,
}

impl<'n, 'p> Walk<'n, 'p> {
    /// A walk through `names` (directory names of the entry `path`).
    pub fn new(path: &'p [u8], names: &'n [&'p [u8]]) -> Self {
        Self {
            path,
            names,
            next: 0,
            linked: Vec::new(),
            at: ROOT_INODE,
            hops: 0,
        }
    }

    /// Goes on from the directory `dir`, made for the last missing name.
    pub fn enter(&mut self, dir: u32) {
        self.at = dir;
    }

    /// Walks until every name is visited or one is missing.
    pub fn run(&mut self, tree: &Tree) -> Result<Stop<'p>> {
        loop {
            let (name, origin) = if let Some(linked) = self.linked.pop() {
                linked
            } else if let Some(&name) = self.names.get(self.next) {
                self.next += 1;
                (Cow::Borrowed(name), self.next - 1)
            } else {
                return Ok(Stop::Arrived(self.at));
            };
            if *name == *b".." {
                self.at = tree.parent(self.at);
                continue;
            }
            let Some(child) = tree.child(self.at, &name) else {
                check_name(self.path, &name)?;
                return Ok(Stop::Missing { dir: self.at, name });
            };
            match tree.get(child).map(|n| &n.body) {
                Some(Body::Dir { .. }) => self.at = child,
                Some(Body::Symlink(target)) => {
                    self.hops += 1;
                    if self.hops > SYMLINK_BUDGET {
                        return Err(Error::TooManySymlinks {
                            path: display(self.path),
                        });
                    }
                    if target.starts_with(b"/") {
                        self.at = ROOT_INODE;
                    }
                    let parts = target.split(|&b| b == b'/').rev();
                    let parts = parts.filter(|p| !matches!(*p, b"" | b"."));
                    self.linked
                        .extend(parts.map(|p| (Cow::Owned(p.to_vec()), origin)));
                }
                _ => {
                    return Err(Error::NotADirectory {
                        path: display(&self.names[..=origin].join(&b'/')),
                    });
                }
            }
        }
    }
}

impl Tree {
    /// The directory `names` (of the entry `path`) lead to, every name
    /// followed; `None` when one is missing or not a directory.
    pub fn lookup_dir(&self, path: &[u8], names: &[&[u8]]) -> Result<Option<u32>> {
        match Walk::new(path, names).run(self) {
            Ok(Stop::Arrived(dir)) => Ok(Some(dir)),
            Ok(Stop::Missing { .. }) | Err(Error::NotADirectory { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The entry `names` (of `path`) name, the last name not followed;
    /// `None` when there is none.
    pub fn lookup(&self, path: &[u8], names: &[&[u8]]) -> Result<Option<u32>> {
        let Some((last, parents)) = names.split_last() else {
            return Ok(Some(ROOT_INODE));
        };
        Ok(self
            .lookup_dir(path, parents)?
            .and_then(|dir| self.child(dir, last)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::split_path;

    #[test]
    fn entry_paths_drop_dots_and_refuse_dotdot() {
        let names = split_path(b"/./a//b/").expect("splits");
        assert_eq!(names, [&b"a"[..], b"b"]);
        assert!(split_path(b"a/..").is_err());
        assert!(split_path(b"../a").is_err());
        assert!(split_path(b"a/b\0c").is_err());
        assert_eq!(split_path(b"/").expect("the root"), Vec::<&[u8]>::new());
    }
}
