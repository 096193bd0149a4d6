//! Docker's copy-up of a new volume, through the agent on this host,
//! checked against what GNU find sees in the image's folder.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use containerization_agent::proto::v1::FillVolumeRequest;
use support::HostAgent;

/// GNU find's view of a tree: path, type, mode, owner, size, mtime, links,
/// link target; sorted.
fn view(root: &Path) -> Vec<String> {
    let out = Command::new("find")
        .arg(root)
        .args(["-mindepth", "1", "-printf", "%P %y %m %U:%G %s %T@ %n %l\n"])
        .output()
        .expect("find");
    assert!(out.status.success());
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("lost+found"))
        // A folder's size is its file system's business.
        .map(|l| {
            let mut words: Vec<&str> = l.split(' ').collect();
            if words[1] == "d" {
                words[4] = "-";
            }
            words.join(" ")
        })
        .collect();
    lines.sort();
    lines
}

fn sh(script: &str, dir: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("sh");
    assert!(status.success(), "{script}");
}

#[tokio::test]
async fn a_new_volume_gets_the_image_folder_with_owners_links_and_nodes() {
    let agent = HostAgent::start().await;
    let root = agent.path("rootfs");
    let data = root.join("var/lib/app");
    std::fs::create_dir_all(&data).unwrap();
    sh(
        "mkdir -p sub/deep && echo one > sub/deep/file && chown -R 1000:1001 sub && \
         chmod 2750 sub && echo two > f && ln f hard && ln -s sub/deep/file rel && \
         ln -s /etc abs && mkfifo pipe && chmod 0604 pipe && chown 5:6 f && \
         touch -d 2001-02-03 f sub/deep/file && chmod 4755 f",
        &data,
    );
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o1770)).unwrap();
    let volume = agent.path("volume");
    std::fs::create_dir_all(volume.join("lost+found")).unwrap();
    let fill = |path: &str, volume: &Path| FillVolumeRequest {
        root: root.display().to_string(),
        path: path.to_owned(),
        volume: volume.display().to_string(),
    };
    let entries = agent
        .client
        .fill_volume(fill("/var/lib/app", &volume))
        .await
        .unwrap();
    assert_eq!(entries, 8, "f hard rel abs pipe sub sub/deep sub/deep/file");
    assert_eq!(view(&volume), view(&data));
    let root_mode = std::fs::metadata(&volume).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        root_mode, 0o1770,
        "the volume's root takes the folder's mode"
    );

    // Not new any more: nothing is copied over what it holds.
    std::fs::remove_file(volume.join("f")).unwrap();
    let again = agent
        .client
        .fill_volume(fill("/var/lib/app", &volume))
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert!(!volume.join("f").exists());

    // A symlink in the image resolves inside the image's root: `/link ->
    // /etc` names the image's (missing) /etc, never this host's.
    std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
    let fresh = agent.path("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let escaped = agent
        .client
        .fill_volume(fill("/link", &fresh))
        .await
        .unwrap();
    assert_eq!(escaped, 0);
    assert_eq!(std::fs::read_dir(&fresh).unwrap().count(), 0);
    let missing = agent
        .client
        .fill_volume(fill("/nowhere", &fresh))
        .await
        .unwrap();
    assert_eq!(missing, 0);
}
