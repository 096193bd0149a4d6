//! The test kit's hostile images through the host-side unpack (what
//! `pull --unpack` runs) and through `image load`: each case ends as its
//! table says, and the sentinels outside the target stay untouched.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use containerization_oci::layer::{UnpackOptions, Unpacker};
use containerization_oci::store::ImageStore;
use containerization_testkit::{HostileCase, Outcome, Sentinels, hostile_cases};

fn unpack(case: &HostileCase, target: &Path) -> Result<(), containerization_oci::Error> {
    let mut unpacker = Unpacker::new(target)?;
    for layer in &case.layers {
        let file = std::fs::File::open(layer).expect("layer");
        unpacker.apply_layer(file, &layer.display().to_string())?;
    }
    unpacker.finish()
}

#[test]
fn hostile_layers_end_as_the_table_says_and_never_touch_the_host() {
    let work = tempfile::tempdir().expect("temp dir");
    let sentinels = Sentinels::create(&work.path().join("outside")).expect("sentinels");
    let cases = hostile_cases(&work.path().join("cases"), &sentinels).expect("cases");
    let mut failures = Vec::new();
    for case in &cases {
        let target = work.path().join("targets").join(&case.name);
        let result = unpack(case, &target);
        match (&case.outcome, result) {
            (Outcome::Refused(text), Err(e)) if e.to_string().contains(text) => {}
            (Outcome::Refused(text), other) => failures.push(format!(
                "{}: expected an error with {text:?}, got {other:?}",
                case.name
            )),
            (Outcome::Unpacked(expects), Ok(())) => {
                for expect in expects {
                    if let Err(e) = expect.check_dir(&target) {
                        failures.push(format!("{}: {e}", case.name));
                    }
                }
            }
            (Outcome::Unpacked(_), Err(e)) => {
                failures.push(format!("{}: expected success, got {e}", case.name))
            }
        }
        let mode = std::fs::metadata(&target)
            .expect("target")
            .permissions()
            .mode();
        if mode & 0o777 != 0o700 {
            failures.push(format!("{}: the target is {mode:o}, not 0700", case.name));
        }
        for change in sentinels.changes() {
            failures.push(format!(
                "{}: changed outside the target: {change}",
                case.name
            ));
        }
        if !work.path().join("targets").is_dir() {
            failures.push(format!(
                "{}: removed the folder holding the target",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn image_load_of_a_hostile_archive_keeps_the_store_and_the_host() {
    let work = tempfile::tempdir().expect("temp dir");
    let sentinels = Sentinels::create(&work.path().join("outside")).expect("sentinels");
    let cases = hostile_cases(&work.path().join("cases"), &sentinels).expect("cases");
    let store_dir = work.path().join("store");
    let store = ImageStore::open(&store_dir).expect("store");
    // Stands for another process's blob being written.
    std::fs::write(store_dir.join("ingest/another-download"), b"partial").expect("sentinel");
    let before: Vec<_> = list(&store_dir);
    let mut failures = Vec::new();
    for case in &cases {
        for layer in &case.layers {
            // None of them is an image archive: each must fail, and harmlessly.
            if let Ok(names) = containerization_oci::archive::load(&store, layer) {
                failures.push(format!("{}: loaded {names:?}", case.name));
            }
            if list(&store_dir) != before {
                failures.push(format!(
                    "{}: the store changed: {:?} -> {:?}",
                    case.name,
                    before,
                    list(&store_dir)
                ));
            }
            for change in sentinels.changes() {
                failures.push(format!(
                    "{}: changed outside the store: {change}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The store's top two levels of names, lock files aside.
fn list(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list").flatten() {
        out.push(entry.file_name().to_string_lossy().into_owned());
        if let Ok(inner) = std::fs::read_dir(entry.path()) {
            for child in inner.flatten() {
                out.push(format!(
                    "{}/{}",
                    entry.file_name().to_string_lossy(),
                    child.file_name().to_string_lossy()
                ));
            }
        }
    }
    out.retain(|name| !name.ends_with(".lock"));
    out.sort();
    out
}

#[test]
fn unpack_stops_at_its_byte_limit_naming_the_layer() {
    let work = tempfile::tempdir().expect("temp dir");
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(2 << 20);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(
            &mut header,
            "big",
            std::io::Read::take(std::io::repeat(7), 2 << 20),
        )
        .expect("append");
    let tar = builder.into_inner().expect("tar");
    let options = UnpackOptions {
        max_bytes: Some(1 << 20),
        ..UnpackOptions::default()
    };
    let mut unpacker = Unpacker::with_options(&work.path().join("t"), &options).expect("unpacker");
    let error = unpacker
        .apply_layer(&tar[..], "sha256:bomb")
        .expect_err("refused");
    let text = error.to_string();
    assert!(
        text.contains("sha256:bomb") && text.contains("big"),
        "{text}"
    );
    assert!(!work.path().join("t/big").exists());
}

#[test]
fn device_nodes_are_created_only_when_asked_for() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: device nodes need root");
        return;
    }
    let work = tempfile::tempdir().expect("temp dir");
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Char);
    header.set_mode(0o666);
    header.set_device_major(1).expect("major");
    header.set_device_minor(3).expect("minor");
    header.set_size(0);
    builder
        .append_data(&mut header, "null", std::io::empty())
        .expect("append");
    let tar = builder.into_inner().expect("tar");
    for keep_devices in [false, true] {
        let target = work.path().join(format!("keep-{keep_devices}"));
        let options = UnpackOptions {
            keep_devices,
            ..UnpackOptions::default()
        };
        let mut unpacker = Unpacker::with_options(&target, &options).expect("unpacker");
        unpacker.apply_layer(&tar[..], "devices").expect("unpacked");
        unpacker.finish().expect("finished");
        assert_eq!(target.join("null").exists(), keep_devices);
    }
}

#[test]
fn a_docker_archive_naming_host_files_loads_nothing_of_them() {
    let work = tempfile::tempdir().expect("temp dir");
    let sentinels = Sentinels::create(&work.path().join("outside")).expect("sentinels");
    let secret = sentinels.dir().join("secret");
    let climbing = format!("{}{}", "../".repeat(32), secret.display());
    let store = ImageStore::open(&work.path().join("store")).expect("store");
    for config in [secret.display().to_string(), climbing, "link".to_owned()] {
        let manifest = serde_json::json!([{
            "Config": config,
            "RepoTags": ["evil:1"],
            "Layers": [],
        }]);
        let bytes = manifest.to_string().into_bytes();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "manifest.json", &bytes[..])
            .expect("append");
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link, "link", &secret)
            .expect("append link");
        let archive = work.path().join("evil.tar");
        std::fs::write(&archive, builder.into_inner().expect("tar")).expect("write");
        let result = containerization_oci::archive::load(&store, &archive);
        assert!(result.is_err(), "{config}: loaded {result:?}");
        assert!(store.list().expect("list").is_empty(), "{config}");
        let blobs = work.path().join("store/content/blobs/sha256");
        for blob in std::fs::read_dir(&blobs).into_iter().flatten().flatten() {
            let bytes = std::fs::read(blob.path()).expect("blob");
            assert_ne!(bytes, b"secret", "{config}: the host's file became a blob");
        }
    }
    assert!(sentinels.changes().is_empty());
}
