//! Disk space and the image store under faults, through the real `cctl`:
//! root file systems removed with their last user, what killed builds left
//! collected, `system df` and `system prune`, garbage collection beside a
//! damaged manifest, and a container made from an image missing a layer.
//! No VM boots: `create` builds the base, which is what these are about.

mod support;

use std::path::PathBuf;

use containerization_testkit::{Compression, Fixture, corrupt_blob, fixture};
use support::World;

/// `cctl create --name NAME --network none IMAGE true`; the id.
fn create(world: &World, name: &str) -> String {
    let ran = world.cctl(&["create", "--name", name, "--network", "none", &world.image]);
    assert_eq!(ran.code, 0, "create {name}: {ran:?}");
    ran.stdout.trim().to_owned()
}

/// The finished bases and the other files in `rootfs/`, by name.
fn rootfs_files(world: &World) -> (Vec<String>, Vec<String>) {
    let dir = world.root.path().join("rootfs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.into_iter().partition(|n| n.ends_with(".ext4"))
}

/// Every blob file in the store.
fn blobs(world: &World) -> Vec<PathBuf> {
    let dir = world.root.path().join("content/blobs/sha256");
    let mut blobs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("blobs")
        .flatten()
        .map(|e| e.path())
        .collect();
    blobs.sort();
    blobs
}

/// The `system df` line of `kind`, split in columns.
fn df_line(world: &World, kind: &str) -> Vec<String> {
    let df = world.cctl(&["system", "df"]);
    assert_eq!(df.code, 0, "{df:?}");
    let line = df
        .stdout
        .lines()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} line: {df:?}"));
    line[kind.len()..]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bases_go_with_their_last_user_and_prune_collects_what_killed_builds_left() {
    let world = World::new();
    create(&world, "user");
    assert_eq!(rootfs_files(&world).0.len(), 1, "create built the base");
    // Removed by force, the image leaves its base to the container.
    let removed = world.cctl(&["image", "rm", "-f", &world.image]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(
        rootfs_files(&world).0.len(),
        1,
        "the container still uses it"
    );
    assert_eq!(df_line(&world, "Root file systems")[..2], ["1", "1"]);

    // What a build killed by SIGKILL leaves: the ext4 writer's temporary
    // (sparse, 4 GiB apparent) and a half-built base, beside a build that
    // still runs (it holds its build lock): while it does, nothing goes.
    let dir = world.root.path().join("rootfs");
    let temporary = dir.join(".ext4-AbC123");
    let file = std::fs::File::create(&temporary).expect("temporary");
    file.set_len(4 << 30).expect("sparse size");
    std::fs::write(
        dir.join(format!("sha256-{}.partial", "1".repeat(64))),
        [7u8; 8192],
    )
    .expect("partial");
    let lock = dir.join(format!("sha256-{}.lock", "2".repeat(64)));
    std::fs::write(&lock, b"").expect("lock file");
    let mut builder = std::process::Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys, time\n\
             f = open(sys.argv[1])\n\
             fcntl.flock(f, fcntl.LOCK_EX)\n\
             print('held', flush=True)\n\
             time.sleep(600)",
        ])
        .arg(&lock)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut held = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(builder.stdout.take().expect("stdout")),
        &mut held,
    )
    .expect("the builder's word");
    assert_eq!(held.trim(), "held");

    // The base goes with its last user.
    assert_eq!(world.cctl(&["rm", "user"]).code, 0);
    let (bases, others) = rootfs_files(&world);
    assert!(bases.is_empty(), "{bases:?}");
    assert!(
        others.iter().any(|n| n.starts_with(".ext4-"))
            && others.iter().any(|n| n.ends_with(".partial")),
        "a running build keeps its files: {others:?}"
    );
    let _ = builder.kill();
    let _ = builder.wait();

    let pruned = world.cctl(&["image", "prune"]);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    let (bases, others) = rootfs_files(&world);
    assert!(bases.is_empty(), "{bases:?}");
    assert!(
        !others
            .iter()
            .any(|n| n.starts_with(".ext4-") || n.ends_with(".partial")),
        "what the killed build left was collected: {others:?}"
    );
    assert_eq!(df_line(&world, "Root file systems")[..3], ["0", "0", "0"]);
}

#[test]
fn system_prune_removes_what_nothing_uses_and_asks_first() {
    let world = World::new();
    containerization_testkit::own_templates(world.root.path()).expect("own templates");
    // A run leaves a VM template behind, which df counts and prune removes.
    assert_eq!(world.run(&[], &["true"]).code, 0);
    let templates = df_line(&world, "VM templates");
    assert_eq!(templates[..2], ["1", "0"], "{templates:?}");
    let stopped = create(&world, "stopped");
    assert_eq!(world.cctl(&["network", "create", "spare"]).code, 0);
    let df = df_line(&world, "Containers");
    assert_eq!(df[..2], ["1", "0"], "one container, none running: {df:?}");
    assert_eq!(df_line(&world, "Images")[..2], ["1", "1"]);

    // Without --force it asks; anything but yes removes nothing.
    let declined = world.cctl_with_input(&["system", "prune"], b"n\n");
    assert_eq!(declined.code, 0, "{declined:?}");
    assert!(
        declined.stdout.contains("WARNING! This will remove"),
        "{declined:?}"
    );
    assert_eq!(world.container_folders(), std::slice::from_ref(&stopped));

    let pruned = world.cctl_with_input(&["system", "prune", "--all"], b"y\n");
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert!(pruned.stdout.contains(&stopped), "{pruned:?}");
    assert!(pruned.stdout.contains("spare"), "{pruned:?}");
    assert!(
        pruned.stdout.contains("Total reclaimed space"),
        "{pruned:?}"
    );
    assert!(world.container_folders().is_empty());
    let networks = world.cctl(&["network", "ls"]);
    assert!(!networks.stdout.contains("spare"), "{networks:?}");
    let images = world.cctl(&["image", "ls"]);
    assert!(!images.stdout.contains("busybox"), "{images:?}");
    assert!(blobs(&world).is_empty(), "every blob went with the image");
    assert!(rootfs_files(&world).0.is_empty(), "and its base");
    assert!(
        pruned.stdout.contains("Deleted VM templates: 1"),
        "{pruned:?}"
    );
    assert_eq!(df_line(&world, "VM templates")[..3], ["0", "0", "0"]);
}

#[test]
fn an_unreadable_manifest_keeps_every_blob_and_names_its_image() {
    let world = World::new();
    let other = world
        .registry
        .push(
            &fixture(Fixture::Compressed(Compression::Zstd)).expect("zstd fixture"),
            "test/zstd:1",
        )
        .expect("push");
    assert_eq!(world.cctl_on_host(&["image", "pull", &other]).code, 0);
    let inspected = world.cctl(&["image", "inspect", &world.image]);
    let busybox: serde_json::Value = serde_json::from_str(&inspected.stdout).expect("JSON");
    let manifest = busybox["manifestDigest"].as_str().expect("manifest digest");
    corrupt_blob(world.root.path(), manifest).expect("corrupt the manifest");
    let before = blobs(&world);

    // Removing the other image must not take the damaged image's config and
    // layer, which its manifest can no longer say are its own.
    let removed = world.cctl(&["image", "rm", &other]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert!(
        removed.stderr.contains("test/busybox:1") && removed.stderr.contains("damaged"),
        "the warning names the image that cannot be read: {removed:?}"
    );
    // The damaged manifest itself was set aside, for a pull to fetch anew;
    // no other blob was removed, and while the manifest is missing a
    // prune removes nothing either.
    let without_manifest: Vec<_> = before
        .iter()
        .filter(|path| !path.ends_with(manifest.trim_start_matches("sha256:")))
        .cloned()
        .collect();
    assert_eq!(blobs(&world), without_manifest, "no other blob was removed");
    let pruned = world.cctl(&["image", "prune"]);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert_eq!(blobs(&world), without_manifest, "nor by a prune");
    let pulled = world.cctl_on_host(&["image", "pull", &world.image]);
    assert_eq!(pulled.code, 0, "{pulled:?}");
    let checked = world.cctl(&["image", "check"]);
    assert_eq!(checked.code, 0, "repaired: {checked:?}");
}

#[test]
fn a_container_from_an_image_missing_a_layer_names_it_and_the_way_out() {
    let world = World::new();
    let inspected = world.cctl(&["image", "inspect", &world.image]);
    let image: serde_json::Value = serde_json::from_str(&inspected.stdout).expect("JSON");
    let layer = image["manifest"]["layers"][0]["digest"]
        .as_str()
        .expect("a layer");
    std::fs::remove_file(containerization_testkit::blob_path(
        world.root.path(),
        layer,
    ))
    .expect("remove the layer");
    let created = world.cctl(&["create", "--network", "none", &world.image]);
    assert_eq!(created.code, 125, "{created:?}");
    assert!(
        created.stderr.contains(layer) && created.stderr.contains("cctl image pull"),
        "{created:?}"
    );
    assert!(world.container_folders().is_empty(), "nothing was left");
}

#[test]
fn damaged_blobs_are_named_where_they_are_read_and_never_exported() {
    let world = World::new();
    let inspected = world.cctl(&["image", "inspect", &world.image]);
    let image: serde_json::Value = serde_json::from_str(&inspected.stdout).expect("JSON");
    let config = image["manifest"]["config"]["digest"]
        .as_str()
        .expect("config")
        .to_owned();
    let layer = image["manifest"]["layers"][0]["digest"]
        .as_str()
        .expect("layer")
        .to_owned();
    let manifest = image["manifestDigest"]
        .as_str()
        .expect("manifest")
        .to_owned();

    // A damaged layer: the archive is refused and not left behind.
    corrupt_blob(world.root.path(), &layer).expect("corrupt the layer");
    let archive = world.root.path().join("out.tar");
    let saved = world.cctl(&[
        "image",
        "save",
        &world.image,
        "-o",
        archive.to_str().expect("utf-8"),
    ]);
    assert_ne!(saved.code, 0, "{saved:?}");
    assert!(
        saved.stderr.contains(&layer) && saved.stderr.contains("damaged"),
        "{saved:?}"
    );
    assert!(!archive.exists(), "no half archive is left");

    // A damaged config: named, with the way out, before anything runs (it
    // was exit 127, "exec sh: not found in PATH").
    corrupt_blob(world.root.path(), &config).expect("corrupt the config");
    let created = world.cctl(&["create", "--network", "none", &world.image, "true"]);
    assert_eq!(created.code, 125, "{created:?}");
    assert!(
        created.stderr.contains(&config)
            && created.stderr.contains("damaged")
            && created.stderr.contains("pull"),
        "{created:?}"
    );

    // A damaged manifest: named as damaged (it was "missing field `config`").
    corrupt_blob(world.root.path(), &manifest).expect("corrupt the manifest");
    let inspected = world.cctl(&["image", "inspect", &world.image]);
    assert_ne!(inspected.code, 0, "{inspected:?}");
    assert!(
        inspected.stderr.contains(&manifest) && inspected.stderr.contains("damaged"),
        "{inspected:?}"
    );
}
