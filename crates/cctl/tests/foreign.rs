//! Foreign architectures, end to end: busybox images of every architecture
//! Debian 12 ships `busybox-static` for (built by umoci from Debian's
//! packages, never by our code) run through the guest's binfmt_misc and
//! Debian's static emulators, in real VMs (TCG here), from templates.

mod support;

use containerization_testkit::{Fixture, fixture};
use support::{Ran, World};

/// Pushes the busybox image of Debian architecture `binary`, configured as
/// `label`, and pulls it into the world's store; its reference.
fn foreign_image(world: &World, binary: &'static str, label: &'static str) -> String {
    let image = fixture(Fixture::Foreign { binary, label }).expect("fixture");
    let reference = world
        .registry
        .push(&image, &format!("foreign/{binary}-as-{label}:1"))
        .expect("push");
    let pulled = world.cctl_on_host(&[
        "image",
        "pull",
        "--platform",
        &format!("linux/{label}"),
        &reference,
    ]);
    assert_eq!(pulled.code, 0, "pull {reference}: {pulled:?}");
    reference
}

/// `cctl run --rm IMAGE args…`.
fn run(world: &World, image: &str, flags: &[&str], args: &[&str]) -> Ran {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(flags);
    all.push(image);
    all.extend_from_slice(args);
    world.cctl(&all)
}

#[test]
fn every_emulated_architecture_runs_execs_and_has_a_tty() {
    let world = World::new();
    // (Debian architecture, OCI architecture, what `uname -m` says.)
    let architectures = [
        ("arm64", "arm64", "aarch64"),
        ("armhf", "arm", "armv7l"),
        ("armel", "arm", "armv7l"),
        ("ppc64el", "ppc64le", "ppc64le"),
        ("s390x", "s390x", "s390x"),
        ("mips64el", "mips64le", "mips64"),
        // The optimized kernel has no 32-bit x86 (no IA32_EMULATION).
        ("i386", "386", "i686"),
    ];
    let cctl = env!("CARGO_BIN_EXE_cctl");
    for (binary, label, machine) in architectures {
        let image = foreign_image(&world, binary, label);
        let ran = run(
            &world,
            &image,
            &[],
            &["sh", "-c", "uname -m; echo ok; exit 7"],
        );
        assert_eq!(
            (ran.code, ran.stdout.as_str()),
            (7, format!("{machine}\nok\n").as_str()),
            "{binary}: {ran:?}"
        );
        // exec into it, with its exit code; and a terminal, through script(1).
        let started = world.cctl(&["run", "-d", "-t", "--name", binary, &image, "sh"]);
        assert_eq!(started.code, 0, "{binary}: {started:?}");
        let exec = world.cctl(&["exec", binary, "sh", "-c", "uname -m; exit 4"]);
        assert_eq!(
            (exec.code, exec.stdout.as_str()),
            (4, format!("{machine}\n").as_str()),
            "{binary}: {exec:?}"
        );
        let inner =
            format!("{cctl} exec -t {binary} sh -c 'test -t 0 && test -t 1 && echo is-a-tty'");
        let out = world.in_terminal(&inner).output().expect("script runs");
        let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(stdout.contains("is-a-tty"), "{binary}: exec -t: {stdout}");
        let rm = world.cctl(&["rm", "-f", binary]);
        assert_eq!(rm.code, 0, "{binary}: {rm:?}");
    }
    assert!(world.container_folders().is_empty(), "--rm left state");
}

#[test]
fn a_foreign_container_takes_exec_a_tty_setuid_and_scripts_as_a_native_one() {
    let world = World::new();
    let native = foreign_image(&world, "amd64", "amd64");
    let arm64 = foreign_image(&world, "arm64", "arm64");
    // A setuid program and a shebang script, as another user: the same
    // answers natively and emulated (binfmt_misc's `C` flag: credentials
    // come from the program, not from the emulator). busybox's `su` refuses
    // to work unless it runs setuid root ("must be suid"); setuid, it gets
    // as far as the password nobody types.
    let probe =
        "busybox-suid su root -c true </dev/null 2>&1; echo rc=$?; id -u; hello arg; echo $0";
    let native_ran = run(&world, &native, &["-u", "nobody"], &["sh", "-c", probe]);
    let arm64_ran = run(&world, &arm64, &["-u", "nobody"], &["sh", "-c", probe]);
    assert_eq!(native_ran.code, 0, "{native_ran:?}");
    assert!(
        !native_ran.stdout.contains("must be suid")
            && native_ran
                .stdout
                .ends_with("rc=1\n65534\nscript /usr/local/bin/hello arg\nsh\n"),
        "native: {native_ran:?}"
    );
    assert_eq!(arm64_ran.stdout, native_ran.stdout, "arm64: {arm64_ran:?}");
    assert_eq!(arm64_ran.code, 0, "{arm64_ran:?}");

    // exec into a running foreign container, and a terminal for both.
    let started = world.cctl(&["run", "-d", "-t", "--name", "arm", &arm64, "sh"]);
    assert_eq!(started.code, 0, "{started:?}");
    let exec = world.cctl(&["exec", "arm", "sh", "-c", "uname -m; exit 4"]);
    assert_eq!(
        (exec.code, exec.stdout.as_str()),
        (4, "aarch64\n"),
        "{exec:?}"
    );
    let cctl = env!("CARGO_BIN_EXE_cctl");
    let probe = "test -t 0 && test -t 1 && echo is-a-tty; uname -m";
    let inner = format!(
        "{cctl} run --rm -t {arm64} sh -c 'echo run:; {probe}'; \
         {cctl} exec -t arm sh -c 'echo exec:; {probe}'"
    );
    let out = world.in_terminal(&inner).output().expect("script runs");
    let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{stdout}");
    let (run_part, exec_part) = stdout.split_once("exec:").expect("both ran");
    assert!(run_part.contains("is-a-tty\naarch64\n"), "run -t: {stdout}");
    assert!(
        exec_part.contains("is-a-tty\naarch64\n"),
        "exec -t: {stdout}"
    );
    let rm = world.cctl(&["rm", "-f", "arm"]);
    assert_eq!(rm.code, 0, "{rm:?}");
}

#[test]
fn platforms_are_chosen_warned_about_and_refused_as_docker_does() {
    let world = World::new();
    let index = world
        .registry
        .push(
            &fixture(Fixture::MultiPlatform).expect("fixture"),
            "multi/busybox:1",
        )
        .expect("push");
    for platform in ["linux/arm64", "linux/amd64"] {
        let pulled = world.cctl_on_host(&["image", "pull", "--platform", platform, &index]);
        assert_eq!(pulled.code, 0, "{pulled:?}");
    }
    let arm = run(
        &world,
        &index,
        &["--platform", "linux/arm64"],
        &["uname", "-m"],
    );
    assert_eq!((arm.code, arm.stdout.as_str()), (0, "aarch64\n"), "{arm:?}");
    let default = run(&world, &index, &[], &["uname", "-m"]);
    assert_eq!(
        (default.code, default.stdout.as_str()),
        (0, "x86_64\n"),
        "{default:?}"
    );
    // Both platforms of the index are listed.
    let listed = world.cctl(&["image", "ls"]);
    let line = listed
        .stdout
        .lines()
        .find(|l| l.starts_with(&index))
        .expect("listed");
    assert!(line.contains("linux/amd64,linux/arm64"), "{listed:?}");

    // A single-platform foreign image runs without --platform, with
    // Docker's warning; inspect names its platform.
    let arm64 = foreign_image(&world, "arm64", "arm64");
    let started = world.cctl(&["create", "--name", "plain", &arm64, "uname", "-m"]);
    assert_eq!(started.code, 0, "{started:?}");
    assert!(
        started.stderr.contains("does not match"),
        "no warning: {started:?}"
    );
    let inspect = world.inspect("plain");
    assert_eq!(inspect["ImagePlatform"], "linux/arm64", "{inspect}");
    let removed = world.cctl(&["rm", "plain"]);
    assert_eq!(removed.code, 0, "{removed:?}");

    // The kernel goes by the ELF header, not the label: amd64 binaries
    // labelled arm64 run; arm64 binaries labelled amd64 get no emulator
    // (none is registered in a native container) and cannot be executed:
    // Podman's exit code 1 and "exec format error".
    let mislabelled = foreign_image(&world, "amd64", "arm64");
    let ran = run(&world, &mislabelled, &[], &["uname", "-m"]);
    assert_eq!((ran.code, ran.stdout.as_str()), (0, "x86_64\n"), "{ran:?}");
    let unemulated = foreign_image(&world, "arm64", "amd64");
    let ran = run(&world, &unemulated, &[], &["uname", "-m"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stderr.to_lowercase().contains("exec format error"),
        "{ran:?}"
    );

    // Platforms nothing runs: named, exit 125, nothing left behind.
    let z80 = foreign_image(&world, "amd64", "z80");
    let refused = run(&world, &z80, &[], &["true"]);
    assert_eq!(refused.code, 125, "{refused:?}");
    assert!(
        refused.stderr.contains("linux/z80") && refused.stderr.contains("no emulator"),
        "{refused:?}"
    );
    for (platform, named) in [
        ("windows/amd64", "windows/amd64"),
        ("linux/z80", "linux/z80"),
        ("nonsense", "nonsense"),
    ] {
        // On the host, where the registry is: `run` pulls the platform it lacks.
        let refused = world.cctl_on_host(&["run", "--rm", "--platform", platform, &index, "true"]);
        assert_eq!(refused.code, 125, "{platform}: {refused:?}");
        assert!(refused.stderr.contains(named), "{platform}: {refused:?}");
    }
    assert!(world.container_folders().is_empty(), "refusals left state");
}

#[test]
fn a_foreign_debian_runs_dpkg_apt_and_a_pipeline() {
    let world = World::new();
    // debootstrap's arm64 minbase, its second stage run under the emulator
    // (in the test kit, cached), as a four-layer image.
    let image = containerization_testkit::foreign_debian_image("arm64", "arm64").expect("fixture");
    let reference = world
        .registry
        .push(&image, "foreign/debian:arm64")
        .expect("push");
    let pulled = world.cctl_on_host(&["image", "pull", "--platform", "linux/arm64", &reference]);
    assert_eq!(pulled.code, 0, "{pulled:?}");
    // Several processes at once in a pipeline, each emulated.
    let script = "dpkg --print-architecture; apt-get --version | head -n 1 | cut -d ' ' -f 1; \
                  seq 1 1000 | sort -rn | head -n 1 | tr 0 o; uname -m";
    let ran = run(&world, &reference, &[], &["sh", "-c", script]);
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (0, "arm64\napt\n1ooo\naarch64\n"),
        "{ran:?}"
    );
}
