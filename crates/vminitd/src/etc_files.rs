//! `resolv.conf` and `hosts` under a root: the guest's own, or a container's
//! rootfs before its process starts.
//!
//! Values are checked (addresses parse, names hold no spaces) so a bad one is
//! refused with its field named instead of producing a file resolvers
//! misread. Files are replaced atomically (written beside, then renamed).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use containerization_agent::proto::v1::{ConfigureDnsRequest, ConfigureHostsRequest};
use tonic::Status;

/// The text of `resolv.conf` for `request`.
pub(crate) fn resolv_conf(request: &ConfigureDnsRequest) -> Result<String, Status> {
    let mut text = String::new();
    for server in &request.nameservers {
        server.parse::<IpAddr>().map_err(|_| {
            Status::invalid_argument(format!("nameservers: {server:?} is not an IP address"))
        })?;
        text.push_str(&format!("nameserver {server}\n"));
    }
    if !request.search_domains.is_empty() {
        check_words(&request.search_domains, "search_domains")?;
        text.push_str(&format!("search {}\n", request.search_domains.join(" ")));
    }
    if !request.options.is_empty() {
        check_words(&request.options, "options")?;
        text.push_str(&format!("options {}\n", request.options.join(" ")));
    }
    Ok(text)
}

/// The text of `hosts` for `request`.
pub(crate) fn hosts(request: &ConfigureHostsRequest) -> Result<String, Status> {
    let mut text = String::new();
    if request.localhost {
        // Docker's lines, IPv6 names included.
        text.push_str(
            "127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             ff00::0\tip6-mcastprefix\n\
             ff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n",
        );
    }
    for entry in &request.entries {
        entry.ip.parse::<IpAddr>().map_err(|_| {
            Status::invalid_argument(format!("entries: {:?} is not an IP address", entry.ip))
        })?;
        if entry.hostnames.is_empty() {
            return Err(Status::invalid_argument(format!(
                "entries: {} has no host names",
                entry.ip
            )));
        }
        check_words(&entry.hostnames, "entries.hostnames")?;
        text.push_str(&format!("{}\t{}\n", entry.ip, entry.hostnames.join(" ")));
    }
    Ok(text)
}

/// Writes `text` to `<root>/etc/<name>`: a new file appears whole (written
/// aside, then renamed); one already there is rewritten in place, since a
/// running container binds it.
pub(crate) fn write(root: &str, name: &str, text: &str) -> Result<(), Status> {
    let root = if root.is_empty() { "/" } else { root };
    let etc = Path::new(root).join("etc");
    let io = |step: &str, path: &Path, err: std::io::Error| {
        Status::failed_precondition(format!("{step} {}: {err}", path.display()))
    };
    std::fs::create_dir_all(&etc).map_err(|e| io("create", &etc, e))?;
    let target = etc.join(name);
    // A running container binds this file: a new inode would not reach
    // it, so a file already there is rewritten in place.
    if target.exists() {
        return std::fs::write(&target, text).map_err(|e| io("write", &target, e));
    }
    let temporary: PathBuf = etc.join(format!(".{name}.vminitd"));
    std::fs::write(&temporary, text).map_err(|e| io("write", &temporary, e))?;
    std::fs::rename(&temporary, &target).map_err(|e| io("replace", &target, e))
}

fn check_words(words: &[String], field: &str) -> Result<(), Status> {
    match words
        .iter()
        .find(|w| w.is_empty() || w.chars().any(char::is_whitespace))
    {
        Some(bad) => Err(Status::invalid_argument(format!(
            "{field}: {bad:?} is empty or holds white space"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerization_agent::proto::v1::HostsEntry;

    #[test]
    fn a_file_already_there_is_rewritten_in_place() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        write(root, "hosts", "one\n").unwrap();
        let path = dir.path().join("etc/hosts");
        let inode = std::fs::metadata(&path).unwrap().ino();
        write(root, "hosts", "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        // The same file: a container's bind mount of it sees the change.
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    }

    #[test]
    fn resolv_conf_lists_servers_search_and_options() {
        let text = resolv_conf(&ConfigureDnsRequest {
            nameservers: vec!["10.0.0.1".into(), "fd00::1".into()],
            search_domains: vec!["example.com".into()],
            options: vec!["ndots:2".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            text,
            "nameserver 10.0.0.1\nnameserver fd00::1\nsearch example.com\noptions ndots:2\n"
        );
        let err = resolv_conf(&ConfigureDnsRequest {
            nameservers: vec!["dns.example".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.message().contains("nameservers"), "{err}");
    }

    #[test]
    fn hosts_lists_localhost_and_entries() {
        let text = hosts(&ConfigureHostsRequest {
            localhost: true,
            entries: vec![HostsEntry {
                ip: "10.0.0.2".into(),
                hostnames: vec!["box".into(), "box.local".into()],
            }],
            ..Default::default()
        })
        .unwrap();
        assert!(text.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost"));
        assert!(
            text.contains("\nff02::2\tip6-allrouters\n"),
            "Docker's IPv6 names: {text}"
        );
        assert!(text.ends_with("10.0.0.2\tbox box.local\n"));
    }
}
