//! Exporting an image's tree as a tar stream (PAX, with xattrs and
//! nanosecond times), hard links kept as links.

use std::collections::HashMap;
use std::io::Write;

use super::{FileKind, Image, Stat};
use crate::format::ROOT_INODE;
use crate::{Error, Result};

fn tar_error(source: std::io::Error) -> Error {
    Error::Io {
        action: "cannot write the tar stream to",
        path: "(output)".into(),
        source,
    }
}

fn header_for(stat: &Stat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(u32::from(stat.metadata.permissions));
    h.set_uid(u64::from(stat.metadata.uid));
    h.set_gid(u64::from(stat.metadata.gid));
    h.set_mtime(stat.metadata.mtime.seconds.max(0) as u64);
    h.set_size(size);
    if let Some(dev) = stat.device {
        let _ = h.set_device_major(dev.major);
        let _ = h.set_device_minor(dev.minor);
    }
    h
}

impl Image {
    /// Writes the whole tree as a tar stream to `out`.
    pub fn export_tar(&self, out: impl Write) -> Result<()> {
        let mut builder = tar::Builder::new(out);
        let mut seen: HashMap<u32, Vec<u8>> = HashMap::new();
        let mut stack: Vec<(u32, Vec<u8>)> = vec![(ROOT_INODE, Vec::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let mut entries = self.entries_of(dir)?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for e in entries {
                let mut path = prefix.clone();
                path.extend_from_slice(&e.name);
                let stat = self.stat_inode(e.inode)?;
                let mut pax: Vec<(String, Vec<u8>)> = stat
                    .metadata
                    .xattrs
                    .iter()
                    .map(|x| (format!("SCHILY.xattr.{}", x.name), x.value.clone()))
                    .collect();
                let t = stat.metadata.mtime;
                pax.push((
                    "mtime".into(),
                    format!("{}.{:09}", t.seconds, t.nanoseconds).into_bytes(),
                ));
                builder
                    .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                    .map_err(tar_error)?;
                if stat.kind != FileKind::Directory && stat.links > 1 {
                    if let Some(first) = seen.get(&e.inode) {
                        let mut h = header_for(&stat, tar::EntryType::Link, 0);
                        builder
                            .append_link(
                                &mut h,
                                crate::writer::display(&path),
                                crate::writer::display(first),
                            )
                            .map_err(tar_error)?;
                        continue;
                    }
                    seen.insert(e.inode, path.clone());
                }
                let name = crate::writer::display(&path);
                match stat.kind {
                    FileKind::Directory => {
                        let mut h = header_for(&stat, tar::EntryType::Directory, 0);
                        builder
                            .append_data(&mut h, &name, std::io::empty())
                            .map_err(tar_error)?;
                        let mut sub = path.clone();
                        sub.push(b'/');
                        stack.push((e.inode, sub));
                    }
                    FileKind::Regular => {
                        let mut data = Vec::new();
                        self.copy_inode(e.inode, &mut data)?;
                        let mut h = header_for(&stat, tar::EntryType::Regular, data.len() as u64);
                        builder
                            .append_data(&mut h, &name, data.as_slice())
                            .map_err(tar_error)?;
                    }
                    FileKind::Symlink => {
                        let target = self.link_target(e.inode)?;
                        let mut h = header_for(&stat, tar::EntryType::Symlink, 0);
                        builder
                            .append_link(&mut h, &name, crate::writer::display(&target))
                            .map_err(tar_error)?;
                    }
                    FileKind::CharDevice
                    | FileKind::BlockDevice
                    | FileKind::Fifo
                    | FileKind::Socket => {
                        let kind = match stat.kind {
                            FileKind::CharDevice => tar::EntryType::Char,
                            FileKind::BlockDevice => tar::EntryType::Block,
                            _ => tar::EntryType::Fifo,
                        };
                        let mut h = header_for(&stat, kind, 0);
                        builder
                            .append_data(&mut h, &name, std::io::empty())
                            .map_err(tar_error)?;
                    }
                }
            }
        }
        builder.finish().map_err(tar_error)
    }
}
