//! The test kit's hostile images through the two commands that apply
//! layers: `cctl image pull --unpack` (the host unpack, from a real
//! registry) and `cctl rootfs create --layers` (the ext4 writer, checked
//! with `e2fsck` and `debugfs`). Both must end as the one table says, and
//! the sentinels outside the target stay untouched.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use containerization_testkit::{Outcome, Registry, Sentinels, hostile_cases, hostile_image};

fn cctl(root: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cctl"))
        .args(args)
        .env("CZ_ROOT", root)
        .env("DOCKER_CONFIG", root.join("no-docker"))
        .output()
        .expect("cctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hostile_images_pulled_with_unpack_and_made_into_rootfs_images_end_as_the_table_says() {
    let work = tempfile::tempdir().expect("temp dir");
    let sentinels = Sentinels::create(&work.path().join("outside")).expect("sentinels");
    let cases = hostile_cases(&work.path().join("cases"), &sentinels).expect("cases");
    let registry = Registry::anonymous().expect("registry");
    let root = work.path().join("state");
    let mut failures = Vec::new();
    for case in &cases {
        let mut fail = |what: String| failures.push(format!("{}: {what}", case.name));

        // The host unpack, as a user runs it.
        let image = hostile_image(case, &work.path().join("images")).expect("image");
        let reference = registry
            .push(&image, &format!("hostile/{}:1", case.name))
            .expect("push");
        let target = work.path().join("unpacked").join(&case.name);
        let (ok, stderr) = cctl(
            &root,
            &[
                "image",
                "pull",
                &reference,
                "--unpack",
                &target.display().to_string(),
            ],
        );
        if stderr.contains('\u{1b}') {
            fail(format!(
                "pull --unpack: colour codes in a piped stderr: {stderr:?}"
            ));
        }
        match (&case.outcome, ok) {
            (Outcome::Refused(text), false) if stderr.contains(text) => {}
            (Outcome::Refused(text), _) => fail(format!(
                "pull --unpack: expected an error with {text:?}: {stderr}"
            )),
            (Outcome::Unpacked(expects), true) => {
                for expect in expects {
                    if let Err(e) = expect.check_dir(&target) {
                        fail(format!("pull --unpack: {e}"));
                    }
                }
                let mode = std::fs::metadata(&target)
                    .expect("target")
                    .permissions()
                    .mode();
                if mode & 0o777 != 0o700 {
                    fail(format!("pull --unpack: the target is {mode:o}, not 0700"));
                }
            }
            (Outcome::Unpacked(_), false) => fail(format!("pull --unpack failed: {stderr}")),
        }

        // The ext4 writer, from the same layer files.
        let ext4 = work.path().join(format!("{}.ext4", case.name));
        let mut args = vec![
            "rootfs".to_owned(),
            "create".to_owned(),
            "--output".to_owned(),
            ext4.display().to_string(),
            "--size".to_owned(),
            "64M".to_owned(),
            "--layers".to_owned(),
        ];
        args.extend(case.layers.iter().map(|l| l.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stderr) = cctl(&root, &args);
        match (&case.outcome, ok) {
            (Outcome::Refused(_), false) => {}
            (Outcome::Refused(_), true) => fail("rootfs create: expected a refusal".into()),
            (Outcome::Unpacked(expects), true) => {
                let fsck = Command::new("e2fsck")
                    .args(["-fn"])
                    .arg(&ext4)
                    .output()
                    .expect("e2fsck runs");
                if !fsck.status.success() {
                    fail(format!(
                        "rootfs create: e2fsck: {}",
                        String::from_utf8_lossy(&fsck.stdout)
                    ));
                }
                for expect in expects {
                    if let Err(e) = expect.check_image(&ext4) {
                        fail(format!("rootfs create: {e}"));
                    }
                }
            }
            (Outcome::Unpacked(_), false) => fail(format!("rootfs create failed: {stderr}")),
        }
        for change in sentinels.changes() {
            fail(format!("changed outside the target: {change}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
