//! `cctl system service` driven by Debian's `docker` CLI (20.10, API 1.41)
//! as a Docker user drives it: version, pull, `run --rm` with its output,
//! standard error and exit code, a detached container with logs, ps,
//! exec (output, exit code, standard input), cp both ways, top, stats,
//! restart, inspect, stop and rm, seen by `cctl` too; a network whose
//! containers reach each other, a volume's data kept across containers, a
//! published port reached from the host; image inspect, tag and rmi; and
//! what is not built answers 501 with its name; and the same commands
//! against Podman's own service, the reference, with bad input.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use containerization_testkit::{Fixture, Supervised, fixture};
use support::{Ran, World};

/// Debian's client, which speaks API 1.41 (another `docker` may be first
/// on the PATH).
const DOCKER: &str = "/usr/bin/docker";

/// The service on the world's state root, on the host's network (where
/// the registry is), and a `docker` configured for it.
struct Service {
    _process: Supervised,
    socket: PathBuf,
    config: tempfile::TempDir,
}

impl Service {
    fn start(world: &World) -> Self {
        let socket = world.root.path().join("docker.sock");
        let mut command = Command::new(env!("CARGO_BIN_EXE_cctl"));
        command
            .args(["system", "service", "-H"])
            .arg(format!("unix://{}", socket.display()))
            .env("CZ_ROOT", world.root.path())
            .env("CZ_LOG", "warn")
            .stdin(Stdio::null());
        let process = Supervised::spawn("cctl system service", command).expect("the service");
        Self::on(process, socket)
    }

    /// The service `process` runs, once it answers on `socket`.
    fn on(process: Supervised, socket: PathBuf) -> Self {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the service listens within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            _process: process,
            socket,
            config: tempfile::tempdir().expect("a docker config folder"),
        }
    }

    /// `docker args…` with `input` as its standard input.
    fn docker_with_input(&self, args: &[&str], input: &[u8]) -> Ran {
        use std::io::Write;
        let mut child = Command::new(DOCKER)
            .args(args)
            .envs(self.client_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker runs");
        child
            .stdin
            .take()
            .expect("its stdin")
            .write_all(input)
            .expect("write its input");
        child.wait_with_output().expect("docker ends").into()
    }

    /// The environment that points a docker client at this service.
    fn client_env(&self) -> [(&'static str, std::ffi::OsString); 2] {
        [
            (
                "DOCKER_HOST",
                format!("unix://{}", self.socket.display()).into(),
            ),
            ("DOCKER_CONFIG", self.config.path().as_os_str().to_owned()),
        ]
    }

    fn docker(&self, args: &[&str]) -> Ran {
        Command::new(DOCKER)
            .args(args)
            .envs(self.client_env())
            .stdin(Stdio::null())
            .output()
            .expect("docker runs")
            .into()
    }
}

/// What `GET path` on 127.0.0.1:`port` answers (HTTP/1.0), or nothing.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(stream, "GET {path} HTTP/1.0\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn the_docker_cli_pulls_runs_and_manages_containers_through_the_service() {
    let world = World::new();
    let service = Service::start(&world);

    let version = service.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(
        (version.code, version.stdout.trim()),
        (0, "1.41"),
        "{version:?}"
    );

    // A pull of an image the store does not have, with Docker's progress.
    let other = world
        .registry
        .push(&fixture(Fixture::Busybox).expect("busybox"), "test/other:2")
        .expect("push");
    let pulled = service.docker(&["pull", &other]);
    assert_eq!(pulled.code, 0, "{pulled:?}");
    assert!(
        pulled.stdout.contains("Downloaded newer image"),
        "{pulled:?}"
    );
    let images = service.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.stdout.lines().any(|l| l == other), "{images:?}");

    // `run --rm`: output, standard error apart, exit codes, nothing left.
    let hi = service.docker(&["run", "--rm", &world.image, "echo", "hi"]);
    assert_eq!((hi.code, hi.stdout.as_str()), (0, "hi\n"), "{hi:?}");
    let three = service.docker(&[
        "run",
        "--rm",
        &world.image,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (three.code, three.stdout.as_str()),
        (3, "out\n"),
        "{three:?}"
    );
    assert!(three.stderr.contains("err"), "{three:?}");
    // `run -i`: standard input through the attach stream, its end the
    // process's end of input.
    let fed = service.docker_with_input(
        &["run", "--rm", "-i", &world.image, "sh"],
        b"echo from-input; exit 5\n",
    );
    assert_eq!(
        (fed.code, fed.stdout.as_str()),
        (5, "from-input\n"),
        "{fed:?}"
    );
    let cat =
        service.docker_with_input(&["run", "--rm", "-i", &world.image, "cat"], b"all of it\n");
    assert_eq!(
        (cat.code, cat.stdout.as_str()),
        (0, "all of it\n"),
        "{cat:?}"
    );

    // Docker's codes for a command not found, one that cannot run, and a
    // run that cannot be made; a field not built is refused, named.
    let missing = service.docker(&["run", "--rm", &world.image, "nosuch"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    let folder = service.docker(&["run", "--rm", &world.image, "/etc"]);
    assert_eq!(folder.code, 126, "{folder:?}");
    let privileged = service.docker(&["run", "--rm", "--privileged", &world.image, "true"]);
    assert_eq!(privileged.code, 125, "{privileged:?}");
    assert!(
        privileged
            .stderr
            .contains("HostConfig.Privileged is not supported"),
        "{privileged:?}"
    );
    let dropped = service.docker(&["run", "--rm", "--cap-drop", "ALL", &world.image, "true"]);
    assert_eq!(dropped.code, 125, "{dropped:?}");
    assert!(dropped.stderr.contains("HostConfig.CapDrop"), "{dropped:?}");
    // `-v /path` alone is an anonymous volume (Config.Volumes).
    let anonymous = service.docker(&[
        "run",
        "--rm",
        "-v",
        "/anon",
        &world.image,
        "sh",
        "-c",
        "grep -c ' /anon ' /proc/mounts",
    ]);
    assert_eq!(
        (anonymous.code, anonymous.stdout.as_str()),
        (0, "1\n"),
        "{anonymous:?}"
    );
    let volumes = service.docker(&["volume", "ls", "-q"]);
    assert_eq!(volumes.stdout.trim(), "", "--rm took it: {volumes:?}");
    let left = service.docker(&["ps", "-a", "-q"]);
    assert_eq!((left.code, left.stdout.trim()), (0, ""), "{left:?}");

    // A detached container, seen by docker and cctl alike.
    let started = service.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        &world.image,
        "sh",
        "-c",
        "echo started; sleep 600",
    ]);
    assert_eq!(started.code, 0, "{started:?}");
    let id = started.stdout.trim().to_owned();
    assert_eq!(id.len(), 64, "{started:?}");
    let listed = world.cctl_on_host(&["ls"]);
    assert!(
        listed.stdout.contains("web"),
        "cctl ls shows it: {listed:?}"
    );
    // Labels, kept and filtered on by docker and cctl alike.
    assert_eq!(
        service
            .docker(&[
                "create",
                "--name",
                "labelled",
                "--label",
                "tier=db",
                &world.image,
                "true"
            ])
            .code,
        0
    );
    let by_label = service.docker(&[
        "ps",
        "-a",
        "--filter",
        "label=tier=db",
        "--format",
        "{{.Names}} {{.Labels}}",
    ]);
    assert_eq!(by_label.stdout.trim(), "labelled tier=db", "{by_label:?}");
    let created = service.docker(&["ps", "--filter", "status=created", "--format", "{{.Names}}"]);
    assert_eq!(created.stdout.trim(), "labelled", "{created:?}");
    let listed = world.cctl_on_host(&["ls", "-a", "-q", "--filter", "label=tier"]);
    assert_eq!(listed.stdout.trim().len(), 12, "{listed:?}");
    assert_eq!(service.docker(&["rm", "labelled"]).code, 0);
    let ps = service.docker(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    assert!(
        ps.stdout.starts_with(&format!("{} web Up", &id[..12])),
        "{ps:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = service.docker(&["logs", "web"]);
        if logs.stdout == "started\n" {
            break;
        }
        assert!(Instant::now() < deadline, "docker logs: {logs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Execs: output, standard error and exit code, standard input.
    let exec = service.docker(&["exec", "web", "sh", "-c", "echo o; echo e >&2; exit 4"]);
    assert_eq!((exec.code, exec.stdout.as_str()), (4, "o\n"), "{exec:?}");
    assert_eq!(exec.stderr, "e\n", "{exec:?}");
    let fed = service.docker_with_input(&["exec", "-i", "web", "cat"], b"fed through\n");
    assert_eq!(
        (fed.code, fed.stdout.as_str()),
        (0, "fed through\n"),
        "{fed:?}"
    );
    let running = service.docker(&["inspect", "-f", "{{.State.Running}} {{.Name}}", "web"]);
    assert_eq!(running.stdout.trim(), "true /web", "{running:?}");
    // A terminal for exec -it, driven from a pseudo-terminal.
    let tty = Command::new("script")
        .args([
            "-qec",
            &format!("{DOCKER} exec -it web sh -c 'tty; echo on-a-terminal'"),
            "/dev/null",
        ])
        .envs(service.client_env())
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(shown.contains("/dev/pts/"), "{shown:?}");
    assert!(shown.contains("on-a-terminal"), "{shown:?}");

    // docker attach to a container with a terminal: the detach keys leave
    // it running with its input open for the next attach.
    let shell = service.docker(&["run", "-dit", "--name", "shell", &world.image, "sh"]);
    assert_eq!(shell.code, 0, "{shell:?}");
    let typer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/type_keys.py");
    let typed = |keys: &[&str]| -> String {
        let out = Command::new("python3")
            .arg(typer)
            .args(keys)
            .args(["--", DOCKER, "attach", "shell"])
            .envs(service.client_env())
            .output()
            .expect("type_keys.py");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = typed(&["1:echo via-$((6*7))\\n", "1:\\x10\\x11"]);
    assert!(first.contains("via-42"), "{first}");
    assert!(first.contains("read escape sequence"), "{first}");
    assert_eq!(inspect(&service, "{{.State.Running}}", "shell"), "true");
    let second = typed(&["1:exit 5\\n"]);
    assert!(second.ends_with("exit=5\n"), "{second}");
    assert_eq!(service.docker(&["rm", "shell"]).code, 0);

    // logs -f follows a container until it ends.
    let counting = service.docker(&[
        "run",
        "-d",
        "--name",
        "counter",
        &world.image,
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.3; done",
    ]);
    assert_eq!(counting.code, 0, "{counting:?}");
    let followed = service.docker(&["logs", "-f", "counter"]);
    assert_eq!(
        (followed.code, followed.stdout.as_str()),
        (0, "1\n2\n3\n"),
        "{followed:?}"
    );
    // Timestamps (nine digits, as Docker's), tail, since and until.
    let stamped = service.docker(&["logs", "-t", "--tail", "2", "counter"]);
    let lines: Vec<&str> = stamped.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stamped:?}");
    let (first_time, first_text) = lines[0].split_once(' ').expect("a time, then the line");
    assert_eq!(first_text, "2", "{stamped:?}");
    assert!(
        first_time.len() == 30 && first_time.ends_with('Z') && first_time.as_bytes()[10] == b'T',
        "{stamped:?}"
    );
    assert!(lines[1].ends_with(" 3"), "{stamped:?}");
    let later = service.docker(&["logs", "--since", "2099-01-01T00:00:00Z", "counter"]);
    assert_eq!((later.code, later.stdout.as_str()), (0, ""), "{later:?}");
    let until_first = service.docker(&["logs", "--until", first_time, "counter"]);
    assert_eq!(until_first.stdout, "1\n2\n", "{until_first:?}");
    assert_eq!(service.docker(&["rm", "counter"]).code, 0);

    // docker cp both ways, a folder to a new name and a file into a folder.
    let host = tempfile::tempdir().expect("a host folder");
    std::fs::create_dir_all(host.path().join("tree/sub")).expect("mkdir");
    std::fs::write(host.path().join("tree/sub/f"), "copied in\n").expect("write");
    let tree = host.path().join("tree");
    let copied_in = service.docker(&["cp", &tree.display().to_string(), "web:/tmp/landed"]);
    assert_eq!(copied_in.code, 0, "{copied_in:?}");
    let seen = service.docker(&["exec", "web", "cat", "/tmp/landed/sub/f"]);
    assert_eq!(seen.stdout, "copied in\n", "{seen:?}");
    let out = host.path().join("out");
    let copied_out = service.docker(&["cp", "web:/tmp/landed", &out.display().to_string()]);
    assert_eq!(copied_out.code, 0, "{copied_out:?}");
    assert_eq!(
        std::fs::read_to_string(out.join("sub/f")).expect("copied out"),
        "copied in\n"
    );
    let missing_path = service.docker(&["cp", "web:/no/such", &out.display().to_string()]);
    assert_ne!(missing_path.code, 0, "{missing_path:?}");
    let top = service.docker(&["top", "web"]);
    assert!(top.stdout.contains("sleep 600"), "{top:?}");
    assert!(!top.stdout.contains("ps -o"), "{top:?}");
    let stats = service.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "web",
    ]);
    assert_eq!((stats.code, stats.stdout.trim()), (0, "web 1"), "{stats:?}");
    // NET I/O counts what crossed its network card (its tap on the host):
    // a connection tried to the gateway sends and receives.
    let tried = service.docker(&[
        "exec",
        "web",
        "sh",
        "-c",
        "wget -q -T 2 -O /dev/null http://$(ip route | awk '/default/ {print $3}'):1/; true",
    ]);
    assert_eq!(tried.code, 0, "{tried:?}");
    let net = service.docker(&["stats", "--no-stream", "--format", "{{.NetIO}}", "web"]);
    let (received, sent) = net.stdout.trim().split_once(" / ").expect("rx / tx");
    assert!(
        !received.starts_with("0B") && !sent.starts_with("0B"),
        "{net:?}"
    );
    // A stream of samples, one a second, until the client leaves.
    let streamed = Command::new("timeout")
        .args([
            "3.5",
            DOCKER,
            "stats",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "web",
        ])
        .envs(service.client_env())
        .stdin(Stdio::null())
        .output()
        .expect("timeout runs");
    let samples = String::from_utf8_lossy(&streamed.stdout)
        .matches("web 1")
        .count();
    assert!(samples >= 2, "{streamed:?}");
    let restarted = service.docker(&["restart", "-t", "1", "web"]);
    assert_eq!(restarted.code, 0, "{restarted:?}");
    let again = service.docker(&["inspect", "-f", "{{.State.Running}}", "web"]);
    assert_eq!(again.stdout.trim(), "true", "{again:?}");
    assert_eq!(service.docker(&["rename", "web", "web2"]).code, 0);
    assert_eq!(inspect(&service, "{{.Name}}", "web2"), "/web2");
    assert_eq!(service.docker(&["rename", "web2", "web"]).code, 0);
    let refused = service.docker(&["rm", "web"]);
    assert_ne!(
        refused.code, 0,
        "a running container is not removed: {refused:?}"
    );
    // An exec is kept for inspection after it ends, and forgotten with its
    // container.
    let (status, made) = http(
        &service.socket,
        "POST",
        "/v1.41/containers/web/exec",
        r#"{"Cmd": ["true"]}"#,
    );
    assert_eq!(status, 201, "{made}");
    let body = made.split("\r\n\r\n").nth(1).unwrap_or_default();
    let exec_id = serde_json::from_str::<serde_json::Value>(body).expect("JSON")["Id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let exec_path = format!("/v1.41/exec/{exec_id}/json");
    assert_eq!(http(&service.socket, "GET", &exec_path, "").0, 200);
    let stopped = service.docker(&["stop", "-t", "1", "web"]);
    assert_eq!(stopped.code, 0, "{stopped:?}");
    let exited = service.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(exited.stdout.trim(), "exited 137", "{exited:?}");
    let removed = service.docker(&["rm", "web"]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert_eq!(http(&service.socket, "GET", &exec_path, "").0, 404);
    let gone = world.cctl_on_host(&["ls", "-a", "-q"]);
    assert_eq!(gone.stdout.trim(), "", "{gone:?}");

    // A network of two containers that reach each other.
    let created = service.docker(&["network", "create", "apinet"]);
    assert_eq!(created.code, 0, "{created:?}");
    let listed = service.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(listed.stdout.lines().any(|l| l == "apinet"), "{listed:?}");
    let server = service.docker(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "apinet",
        &world.image,
        "sh",
        "-c",
        "echo served > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    assert_eq!(server.code, 0, "{server:?}");
    let address = service.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv"]);
    let address = address.stdout.trim().to_owned();
    let fetched = service.docker(&[
        "run",
        "--rm",
        "--network",
        "apinet",
        &world.image,
        "sh",
        "-c",
        &format!(
            "for i in $(seq 50); do wget -qO- http://{address}/index.html && \
             wget -qO- http://srv/index.html && exit 0; sleep 0.2; done; exit 1"
        ),
    ]);
    // By address, then by the server's name.
    assert_eq!(
        (fetched.code, fetched.stdout.as_str()),
        (0, "served\nserved\n"),
        "{fetched:?}"
    );
    // A container made on the default network joins the server's network
    // too before it starts: a second network card, known there by an
    // alias, over which it reaches the server by name. It leaves the
    // default network afterwards, and the server's network is its first.
    // A running container cannot change its networks (no hotplug), and
    // says so.
    let made = service.docker(&[
        "create",
        "--name",
        "moved",
        &world.image,
        "sh",
        "-c",
        "for i in $(seq 50); do wget -qO- http://srv/index.html && break; sleep 0.2; done; \
         ls /sys/class/net | tr '\\n' ' '",
    ]);
    assert_eq!(made.code, 0, "{made:?}");
    let joined = service.docker(&["network", "connect", "--alias", "mover", "apinet", "moved"]);
    assert_eq!(joined.code, 0, "{joined:?}");
    let twice = service.docker(&["network", "connect", "apinet", "moved"]);
    assert_ne!(twice.code, 0, "{twice:?}");
    assert!(twice.stderr.contains("already exists"), "{twice:?}");
    let networks = "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}";
    assert_eq!(inspect(&service, networks, "moved"), "apinet default");
    assert_eq!(
        inspect(&service, "{{.HostConfig.NetworkMode}}", "moved"),
        "default"
    );
    let ran = service.docker(&["start", "-a", "moved"]);
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (0, "served\neth0 eth1 lo "),
        "{ran:?}"
    );
    assert_eq!(
        service
            .docker(&["network", "disconnect", "bridge", "moved"])
            .code,
        0
    );
    assert_eq!(inspect(&service, networks, "moved"), "apinet");
    assert_eq!(
        inspect(&service, "{{.HostConfig.NetworkMode}}", "moved"),
        "apinet"
    );
    assert_eq!(service.docker(&["rm", "moved"]).code, 0);
    let hot = service.docker(&["network", "disconnect", "apinet", "srv"]);
    assert_ne!(hot.code, 0, "{hot:?}");
    assert!(hot.stderr.contains("hotplug"), "{hot:?}");
    let busy = service.docker(&["network", "rm", "apinet"]);
    assert_ne!(busy.code, 0, "a network in use stays: {busy:?}");
    assert_eq!(service.docker(&["rm", "-f", "srv"]).code, 0);
    assert_eq!(service.docker(&["network", "rm", "apinet"]).code, 0);

    // A volume's data outlives its containers.
    assert_eq!(service.docker(&["volume", "create", "apivol"]).code, 0);
    let wrote = service.docker(&[
        "run",
        "--rm",
        "-v",
        "apivol:/data",
        &world.image,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(wrote.code, 0, "{wrote:?}");
    let read = service.docker(&[
        "run",
        "--rm",
        "-v",
        "apivol:/data",
        &world.image,
        "cat",
        "/data/f",
    ]);
    assert_eq!((read.code, read.stdout.as_str()), (0, "kept\n"), "{read:?}");
    let volumes = service.docker(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(volumes.stdout.lines().any(|l| l == "apivol"), "{volumes:?}");
    assert_eq!(service.docker(&["volume", "rm", "apivol"]).code, 0);

    // A published port, reached from the host.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let published = service.docker(&[
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        &format!("{port}:80"),
        &world.image,
        "sh",
        "-c",
        "echo published > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    assert_eq!(published.code, 0, "{published:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = http_get(port, "/index.html");
        if got.ends_with("\r\n\r\npublished\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the published port answers: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(service.docker(&["rm", "-f", "pub"]).code, 0);

    // Events as they happen: a container's life.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock")
        .as_secs()
        + 8;
    let events = Command::new(DOCKER)
        .args([
            "events",
            "--until",
            &until.to_string(),
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .envs(service.client_env())
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker events");
    std::thread::sleep(Duration::from_millis(500));
    let lived = service.docker(&[
        "run",
        "--rm",
        "--name",
        "evented",
        &world.image,
        "sh",
        "-c",
        "exit 2",
    ]);
    assert_eq!(lived.code, 2, "{lived:?}");
    let seen = events.wait_with_output().expect("docker events ends");
    let seen = String::from_utf8_lossy(&seen.stdout);
    let life: Vec<&str> = seen.lines().filter(|l| l.ends_with(" evented")).collect();
    assert_eq!(
        life,
        [
            "create evented",
            "start evented",
            "die evented",
            "destroy evented"
        ],
        "{seen}"
    );

    // Images: inspect, tag, removal (refused while a container uses one).
    let inspected = service.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Os}}/{{.Architecture}}",
        &world.image,
    ]);
    assert_eq!(inspected.stdout.trim(), "linux/amd64", "{inspected:?}");
    assert_eq!(
        service
            .docker(&["tag", &world.image, "localhost/again:3"])
            .code,
        0
    );
    let tagged = service.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        tagged.stdout.lines().any(|l| l == "localhost/again:3"),
        "{tagged:?}"
    );
    let untagged = service.docker(&["rmi", "localhost/again:3"]);
    assert_eq!(untagged.code, 0, "{untagged:?}");
    // Past events, replayed and filtered: the service's image events and
    // the end of the container above. (The CLI sends `until` in whole
    // seconds: a second later, they are all before it.)
    std::thread::sleep(Duration::from_millis(1100));
    let past = |filters: &[&str]| -> String {
        let mut args = vec!["events", "--since", "10m", "--until", "0s"];
        args.extend_from_slice(filters);
        args.extend_from_slice(&["--format", "{{.Action}} {{.Actor.Attributes.name}}"]);
        service.docker(&args).stdout
    };
    let images_seen = past(&["--filter", "type=image"]);
    for wanted in [
        format!("pull {other}"),
        "tag localhost/again:3".to_owned(),
        "untag localhost/again:3".to_owned(),
    ] {
        assert!(
            images_seen.lines().any(|l| l == wanted),
            "{wanted}: {images_seen}"
        );
    }
    let died = past(&["--filter", "event=die", "--filter", "container=evented"]);
    assert_eq!(died, "die evented\n");
    // The image pulled as `other` is the same one: that name goes, the
    // image stays for its other name.
    let other_gone = service.docker(&["rmi", &other]);
    assert_eq!(other_gone.code, 0, "{other_gone:?}");
    assert_eq!(
        service
            .docker(&["create", "--name", "user", &world.image, "true"])
            .code,
        0
    );
    let in_use = service.docker(&["rmi", &world.image]);
    assert_ne!(in_use.code, 0, "{in_use:?}");
    assert!(in_use.stderr.contains("in use"), "{in_use:?}");
    let pruned = service.docker(&["container", "prune", "-f"]);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    let gone = service.docker(&["ps", "-a", "-q"]);
    assert_eq!(gone.stdout.trim(), "", "{gone:?}");

    // A registry that wants a password: login checks it through the
    // service, push and pull send it (X-Registry-Auth), as Docker's do.
    let locked = containerization_testkit::Registry::basic_auth().expect("a locked registry");
    let user = locked.credentials().expect("its credentials").clone();
    let pushed = format!("{}/test/pushed:1", locked.host());
    assert_eq!(service.docker(&["tag", &world.image, &pushed]).code, 0);
    let refused = service.docker(&["push", &pushed]);
    assert_ne!(refused.code, 0, "no credential yet: {refused:?}");
    let wrong = service.docker(&["login", &locked.host(), "-u", &user.username, "-p", "wrong"]);
    assert_ne!(wrong.code, 0, "{wrong:?}");
    let login = service.docker(&[
        "login",
        &locked.host(),
        "-u",
        &user.username,
        "-p",
        &user.password,
    ]);
    assert_eq!(login.code, 0, "{login:?}");
    assert!(login.stdout.contains("Login Succeeded"), "{login:?}");
    let push = service.docker(&["push", &pushed]);
    assert_eq!(push.code, 0, "{push:?}");
    assert!(push.stdout.contains("1: digest: sha256:"), "{push:?}");
    assert_eq!(service.docker(&["rmi", &pushed]).code, 0);
    let back = service.docker(&["pull", &pushed]);
    assert_eq!(back.code, 0, "{back:?}");
    // Image filters, then a prune of every image no container uses.
    let found = service.docker(&[
        "images",
        "--filter",
        "reference=*/test/push*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(found.stdout.trim(), pushed, "{found:?}");
    let none = service.docker(&["images", "-q", "--filter", "dangling=true"]);
    assert_eq!((none.code, none.stdout.trim()), (0, ""), "{none:?}");
    let image_pruned = service.docker(&["image", "prune", "-a", "-f"]);
    assert_eq!(image_pruned.code, 0, "{image_pruned:?}");
    assert!(
        image_pruned.stdout.contains(&format!("untagged: {pushed}")),
        "{image_pruned:?}"
    );
    let left = service.docker(&["images", "-q"]);
    assert_eq!(left.stdout.trim(), "", "{left:?}");

    // Bad input says so.
    let filtered = service.docker(&["events", "--filter", "colour=red", "--until", "0s"]);
    assert_ne!(filtered.code, 0, "{filtered:?}");
    assert!(filtered.stderr.contains("invalid filter"), "{filtered:?}");
    let _ = world.cctl_on_host(&["network", "rm", "default"]);
}

/// `docker inspect -f FORMAT NAME`, trimmed.
fn inspect(service: &Service, format: &str, name: &str) -> String {
    service
        .docker(&["inspect", "-f", format, name])
        .stdout
        .trim()
        .to_owned()
}

/// Waits up to `seconds` until `inspect(format, name)` says `wanted`.
fn until(service: &Service, format: &str, name: &str, wanted: &str, seconds: u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let now = inspect(service, format, name);
        if now == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {format} is {now:?}, not {wanted:?}, after {seconds} s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn restart_policies_restart_as_dockers_and_the_service_starts_what_its_policy_keeps_running() {
    let world = World::new();
    let service = Service::start(&world);

    // on-failure:2: the first run and two restarts, then it stays exited.
    let retry = service.docker(&[
        "run",
        "-d",
        "--name",
        "retry",
        "--restart",
        "on-failure:2",
        &world.image,
        "sh",
        "-c",
        "echo ran; exit 1",
    ]);
    assert_eq!(retry.code, 0, "{retry:?}");
    until(
        &service,
        "{{.State.Status}} {{.RestartCount}}",
        "retry",
        "exited 2",
        60,
    );
    let policy = inspect(
        &service,
        "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "retry",
    );
    assert_eq!(policy, "on-failure:2");
    let ran = service.docker(&["logs", "retry"]);
    assert_eq!(ran.stdout, "ran\nran\nran\n", "{ran:?}");

    // unless-stopped: its owner killed (as a host's crash would), the next
    // service starts it; a user's stop holds it.
    let keeper = service.docker(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "--restart",
        "unless-stopped",
        &world.image,
        "sleep",
        "600",
    ]);
    assert_eq!(keeper.code, 0, "{keeper:?}");
    let inspected = world.cctl_on_host(&["inspect", "keeper"]);
    let value: serde_json::Value = serde_json::from_str(&inspected.stdout).expect("inspect JSON");
    let owner = value[0]["State"]["OwnerPid"].as_i64().expect("an owner");
    let owner =
        rustix::process::Pid::from_raw(i32::try_from(owner).expect("a pid")).expect("a pid");
    rustix::process::kill_process(owner, rustix::process::Signal::KILL).expect("kill the owner");
    until(&service, "{{.State.Running}}", "keeper", "false", 30);
    drop(service);
    let service = Service::start(&world);
    until(&service, "{{.State.Running}}", "keeper", "true", 60);
    assert_eq!(service.docker(&["stop", "-t", "1", "keeper"]).code, 0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inspect(&service, "{{.State.Running}}", "keeper"), "false");

    // --rm and --restart together are refused, by cctl too.
    let both = world.cctl_on_host(&["run", "--rm", "--restart", "always", &world.image, "true"]);
    assert_eq!(both.code, 125, "{both:?}");
    assert!(both.stderr.contains("cannot be restarted"), "{both:?}");
    assert_eq!(service.docker(&["rm", "-f", "retry", "keeper"]).code, 0);
    let _ = world.cctl_on_host(&["network", "rm", "default"]);
}

/// Systemd's socket activation, as `contrib/containerization-docker.socket`
/// sets it up: a launcher binds the socket, hands it over as descriptor 3
/// with `LISTEN_FDS` and `LISTEN_PID`, and the service answers on it
/// without making a socket of its own.
#[test]
fn the_service_answers_on_a_socket_systemd_passes() {
    let dir = tempfile::tempdir().expect("a folder");
    let root = containerization_testkit::shared_state_root(dir.path(), "root-").expect("a root");
    let socket = dir.path().join("activated.sock");
    let unused = dir.path().join("never.sock");
    let launcher = "import os, socket, sys\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.bind(sys.argv[1])\n\
        s.listen(16)\n\
        os.dup2(s.fileno(), 3)\n\
        os.set_inheritable(3, True)\n\
        os.environ['LISTEN_FDS'] = '1'\n\
        os.environ['LISTEN_PID'] = str(os.getpid())\n\
        os.execv(sys.argv[2], [sys.argv[2], 'system', 'service', '-H', 'unix://' + sys.argv[3]])\n";
    let mut command = Command::new("python3");
    command
        .arg("-c")
        .arg(launcher)
        .arg(&socket)
        .arg(env!("CARGO_BIN_EXE_cctl"))
        .arg(&unused)
        .env("CZ_ROOT", root.path())
        .stdin(Stdio::null());
    let _service = Supervised::spawn("an activated service", command).expect("the launcher");
    let config = tempfile::tempdir().expect("a docker config folder");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let version = Command::new(DOCKER)
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .env("DOCKER_CONFIG", config.path())
            .output()
            .expect("docker runs");
        if String::from_utf8_lossy(&version.stdout).trim() == "1.41" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the activated service answers: {}",
            String::from_utf8_lossy(&version.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!unused.exists(), "the service made no socket of its own");
}

/// Docker Compose (v1, 1.29) on the service: a project of two services, a
/// published port, a named volume and two networks of its own (the web
/// service on both, the job only on the second, so it finds the web service
/// through its second card), up, listed, served, logged and down with
/// nothing left.
#[test]
fn docker_compose_brings_a_project_up_and_down() {
    let world = World::new();
    let service = Service::start(&world);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let project = tempfile::tempdir().expect("a project folder");
    let dir = project.path().join("czproj");
    std::fs::create_dir(&dir).expect("mkdir");
    let file = format!(
        "version: \"3\"\n\
         services:\n\
         \x20 web:\n\
         \x20   image: {image}\n\
         \x20   command: sh -c \"echo composed > /tmp/index.html; exec httpd -f -p 80 -h /tmp\"\n\
         \x20   ports: [\"{port}:80\"]\n\
         \x20   volumes: [\"data:/data\"]\n\
         \x20   networks: [default, back]\n\
         \x20 job:\n\
         \x20   image: {image}\n\
         \x20   command: sh -c \"echo job ran; for i in $$(seq 50); do wget -qO- http://web/index.html && exit 0; sleep 0.2; done\"\n\
         \x20   depends_on: [web]\n\
         \x20   networks: [back]\n\
         volumes:\n\
         \x20 data:\n\
         networks:\n\
         \x20 back:\n",
        image = world.image
    );
    std::fs::write(dir.join("docker-compose.yml"), file).expect("write the compose file");
    let compose_on = |on: &Service, args: &[&str]| -> Ran {
        Command::new("docker-compose")
            .args(args)
            .current_dir(&dir)
            .envs(on.client_env())
            .stdin(Stdio::null())
            .output()
            .expect("docker-compose runs")
            .into()
    };
    let compose = |args: &[&str]| compose_on(&service, args);
    let up = compose(&["up", "-d"]);
    assert_eq!(up.code, 0, "{up:?}");
    let listed = compose(&["ps"]);
    assert!(listed.stdout.contains("czproj_web_1"), "{listed:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_get(port, "/index.html").ends_with("\r\n\r\ncomposed\n") {
        assert!(
            Instant::now() < deadline,
            "the web service answers on {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = compose(&["logs", "--no-color", "job"]);
        // The job found the web service by its name.
        if logs.stdout.contains("job ran") && logs.stdout.contains("composed") {
            break;
        }
        assert!(Instant::now() < deadline, "{logs:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let labelled = service.docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        "label=com.docker.compose.project=czproj",
    ]);
    assert_eq!(labelled.stdout.lines().count(), 2, "{labelled:?}");
    let down = compose(&["down", "-v"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert_eq!(service.docker(&["ps", "-a", "-q"]).stdout.trim(), "");
    let networks = service.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.stdout.contains("czproj"), "{networks:?}");
    let volumes = service.docker(&["volume", "ls", "-q"]);
    assert_eq!(volumes.stdout.trim(), "", "{volumes:?}");

    // The same project on Podman's service: the same answers to up, ps
    // and down, and nothing left. (Its job cannot find the web service by
    // name: Debian's Podman 4.3 has no DNS plugin for CNI.)
    let scratch = tempfile::tempdir().expect("podman's folder");
    let (podman, _unmounted) = podman_service(&world, scratch.path());
    let podman_up = compose_on(&podman, &["up", "-d"]);
    assert_eq!(podman_up.code, up.code, "{podman_up:?}");
    // Both list the project's two containers, by Compose's names.
    let shape = |on: &Service| {
        let listed = compose_on(on, &["ps"]);
        let ids = compose_on(on, &["ps", "-q"]).stdout.lines().count();
        let names: Vec<bool> = ["czproj_web_1", "czproj_job_1"]
            .iter()
            .map(|n| listed.stdout.contains(n))
            .collect();
        (listed.code, ids, names)
    };
    let podman_shape = shape(&podman);
    let up_again = compose(&["up", "-d"]);
    assert_eq!(up_again.code, 0, "{up_again:?}");
    let ours_shape = shape(&service);
    assert_eq!(compose(&["down", "-v"]).code, 0);
    assert_eq!(ours_shape, (0, 2, vec![true, true]));
    assert_eq!(podman_shape, ours_shape);
    let podman_down = compose_on(&podman, &["down", "-v"]);
    assert_eq!(podman_down.code, 0, "{podman_down:?}");
    for (name, on) in [("ours", &service), ("podman", &podman)] {
        let left = on.docker(&["ps", "-a", "-q"]);
        assert_eq!(left.stdout.trim(), "", "{name}: {left:?}");
        let volumes = on.docker(&["volume", "ls", "-q"]);
        assert_eq!(volumes.stdout.trim(), "", "{name}: {volumes:?}");
        let networks = on.docker(&["network", "ls", "--format", "{{.Name}}"]);
        assert!(!networks.stdout.contains("czproj"), "{name}: {networks:?}");
    }
    let _ = world.cctl_on_host(&["network", "rm", "default"]);
}

/// Podman's own Docker-compatible service (Debian's `podman`, with `runc`:
/// `crun` 1.8 refuses this host's hybrid cgroups), on a private store, in
/// the world's network namespace so its bridge goes with it, holding the
/// world's image (copied in by skopeo, so it never pulls).
fn podman_service(world: &World, dir: &std::path::Path) -> (Service, Unmounted) {
    let store = dir.join("store");
    let run = dir.join("run");
    let storage = format!("overlay@{}+{}", store.display(), run.display());
    let copied = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{}", world.image))
        .arg(format!("containers-storage:[{storage}]{}", world.image))
        .output()
        .expect("skopeo runs");
    assert!(copied.status.success(), "{copied:?}");
    let conf = dir.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n\
             [network]\nnetwork_config_dir = \"{}\"\n\
             [engine]\nruntime = \"runc\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{}\"\n",
            dir.join("cni").display(),
            dir.join("events.log").display()
        ),
    )
    .expect("containers.conf");
    let socket = dir.join("podman.sock");
    // `nsenter`, not `ip netns exec`, which mounts a /sys without cgroups.
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net={}", world.netns.path().display()))
        .arg("podman")
        .arg("--root")
        .arg(&store)
        .arg("--runroot")
        .arg(&run)
        .args(["--storage-driver", "overlay", "--tmpdir"])
        .arg(dir.join("tmp"))
        .args(["system", "service", "-t", "0"])
        .arg(format!("unix://{}", socket.display()))
        .env("CONTAINERS_CONF", &conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let process = Supervised::spawn("podman system service", command).expect("podman");
    (
        Service::on(process, socket),
        Unmounted(store.join("overlay")),
    )
}

/// Podman's store mounts its overlay folder on itself (skopeo's copy once
/// more); this undoes them.
struct Unmounted(PathBuf);

impl Drop for Unmounted {
    fn drop(&mut self) {
        for _ in 0..4 {
            let undone = Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .stderr(Stdio::null())
                .status();
            if !undone.is_ok_and(|status| status.success()) {
                break;
            }
        }
    }
}

/// How two services' answers to one command are compared.
#[derive(Debug, Clone, Copy)]
enum Same {
    /// Exit code and standard output.
    Output,
    /// Exit code, and each's standard error names the thing.
    Code,
    /// Exit code, and an id (64 hexadecimal digits) on standard output.
    Id,
}

/// A status code and body of one raw HTTP request to `socket`.
fn http(socket: &std::path::Path, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// The same `docker` commands against this service and Podman's: exit
/// codes and output as Podman's (the reference implementation here), and
/// bad input answered as Docker's: malformed JSON, an unknown route, a
/// name taken, an image that is nowhere, a container that is not there.
/// Where Podman 4.3 strays from Docker (it loses `run --rm`'s exit code
/// and answers 1 for a command not found), the other test holds us to
/// Docker's answer instead.
#[test]
fn the_same_commands_answer_as_podmans_service() {
    let world = World::new();
    let ours = Service::start(&world);
    let scratch = tempfile::tempdir().expect("podman's folder");
    let (podman, _unmounted) = podman_service(&world, scratch.path());
    let file = scratch.path().join("greeting");
    std::fs::write(&file, "from the host\n").expect("a file");
    let file = file.to_str().expect("utf-8");
    let back = |service: &str| scratch.path().join(format!("back-{service}"));
    let image = world.image.as_str();
    let cases: Vec<(Same, Vec<String>)> = [
        (
            Same::Output,
            vec!["version", "--format", "{{.Server.APIVersion}}"],
        ),
        (Same::Output, vec!["run", "--rm", image, "echo", "hi"]),
        (
            Same::Output,
            vec![
                "run",
                "--name",
                "three",
                image,
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ],
        ),
        (
            Same::Output,
            vec![
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "three",
            ],
        ),
        (Same::Output, vec!["wait", "three"]),
        (Same::Code, vec!["kill", "three"]),
        (Same::Output, vec!["rm", "three"]),
        (Same::Code, vec!["rm", "three"]),
        (Same::Code, vec!["inspect", "three"]),
        (Same::Id, vec!["create", "--name", "twice", image, "true"]),
        (Same::Code, vec!["create", "--name", "twice", image, "true"]),
        (Same::Output, vec!["rename", "twice", "renamed"]),
        (
            Same::Output,
            vec!["ps", "-a", "--format", "{{.Names}} {{.Status}}"],
        ),
        (Same::Output, vec!["cp", file, "renamed:/greeting"]),
        (Same::Output, vec!["rm", "renamed"]),
        (
            Same::Code,
            vec!["run", "--rm", "127.0.0.1:1/nowhere:1", "true"],
        ),
        (
            Same::Output,
            vec![
                "run",
                "--rm",
                "-e",
                "A=1",
                "-w",
                "/tmp",
                "-u",
                "1:2",
                image,
                "sh",
                "-c",
                "echo $A; pwd; id -u; id -g",
            ],
        ),
        // (Not --rm: Podman 4.3 loses its exit code.)
        (
            Same::Code,
            vec!["run", "--name", "ro", "--read-only", image, "touch", "/x"],
        ),
        (Same::Output, vec!["rm", "ro"]),
        (
            Same::Output,
            vec![
                "run",
                "--rm",
                "--tmpfs",
                "/t",
                image,
                "sh",
                "-c",
                "grep -c ' /t ' /proc/mounts",
            ],
        ),
        (
            Same::Id,
            vec![
                "run",
                "-d",
                "--name",
                "long",
                image,
                "sh",
                "-c",
                "echo started; sleep 600",
            ],
        ),
        (
            Same::Output,
            vec!["exec", "long", "sh", "-c", "echo in; exit 4"],
        ),
        (Same::Output, vec!["logs", "long"]),
        (
            Same::Output,
            vec!["exec", "long", "sh", "-c", "echo $HOME; id -u; pwd"],
        ),
        (
            Same::Output,
            // (Not the name: Podman's lacks Docker's leading `/`, and the
            // CLI cuts its first letter.)
            vec!["stats", "--no-stream", "--format", "{{.PIDs}}", "long"],
        ),
        (Same::Output, vec!["port", "long"]),
        (Same::Output, vec!["restart", "-t", "1", "long"]),
        (
            Same::Output,
            vec![
                "ps",
                "--filter",
                "name=long",
                "--format",
                "{{.Names}} {{.State}}",
            ],
        ),
        (
            Same::Output,
            vec![
                "inspect",
                "-f",
                "{{.State.Running}} {{.Name}} {{.Config.Image}}",
                "long",
            ],
        ),
        (Same::Code, vec!["rm", "long"]),
        (Same::Output, vec!["stop", "-t", "1", "long"]),
        (
            Same::Output,
            vec![
                "inspect",
                "-f",
                "{{.State.Running}} {{.State.ExitCode}}",
                "long",
            ],
        ),
        (Same::Output, vec!["rm", "long"]),
        (Same::Output, vec!["volume", "create", "kept"]),
        (
            Same::Output,
            vec![
                "run",
                "--rm",
                "-v",
                "kept:/data",
                image,
                "sh",
                "-c",
                "echo kept > /data/f",
            ],
        ),
        (
            Same::Output,
            vec!["run", "--rm", "-v", "kept:/data", image, "cat", "/data/f"],
        ),
        (
            Same::Output,
            vec!["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "kept"],
        ),
        (Same::Output, vec!["volume", "rm", "kept"]),
        (Same::Code, vec!["volume", "rm", "kept"]),
        (Same::Id, vec!["network", "create", "apart"]),
        (
            Same::Output,
            vec!["network", "inspect", "-f", "{{.Name}} {{.Driver}}", "apart"],
        ),
        (Same::Output, vec!["network", "rm", "apart"]),
        (Same::Code, vec!["network", "rm", "apart"]),
        (Same::Code, vec!["image", "inspect", "nowhere:1"]),
    ]
    .into_iter()
    .map(|(same, args)| (same, args.into_iter().map(str::to_owned).collect()))
    .collect();
    let mut differ = Vec::new();
    for (same, args) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (a, b) = (ours.docker(&args), podman.docker(&args));
        let agree = match same {
            Same::Output => (a.code, &a.stdout) == (b.code, &b.stdout),
            Same::Code => a.code == b.code && (a.code == 0 || !a.stderr.trim().is_empty()),
            Same::Id => {
                let id = |out: &str| {
                    let out = out.trim();
                    out.len() == 64 && out.bytes().all(|b| b.is_ascii_hexdigit())
                };
                a.code == b.code && id(&a.stdout) && id(&b.stdout)
            }
        };
        if !agree {
            differ.push(format!(
                "docker {args:?}:\n  ours:   {a:?}\n  podman: {b:?}"
            ));
        }
    }
    // Standard input through exec -i, the same from both.
    for (name, service) in [("ours", &ours), ("podman", &podman)] {
        let running = service.docker(&["run", "-d", "--name", "fed", image, "sleep", "600"]);
        assert_eq!(running.code, 0, "{name}: {running:?}");
        let fed = service.docker_with_input(&["exec", "-i", "fed", "cat"], b"fed\n");
        if (fed.code, fed.stdout.as_str()) != (0, "fed\n") {
            differ.push(format!("{name}: exec -i: {fed:?}"));
        }
        assert_eq!(service.docker(&["rm", "-f", "fed"]).code, 0);
    }
    // A file copied in comes back out the same from both.
    for (name, service) in [("ours", &ours), ("podman", &podman)] {
        let made = service.docker(&["create", "--name", "copied", image, "true"]);
        assert_eq!(made.code, 0, "{name}: {made:?}");
        assert_eq!(service.docker(&["cp", file, "copied:/greeting"]).code, 0);
        let out = back(name);
        let copied = service.docker(&["cp", "copied:/greeting", out.to_str().expect("utf-8")]);
        assert_eq!(copied.code, 0, "{name}: {copied:?}");
        assert_eq!(
            std::fs::read_to_string(&out).expect("copied out"),
            "from the host\n",
            "{name}"
        );
        assert_eq!(service.docker(&["rm", "copied"]).code, 0);
    }

    // Raw requests: each service's status code for the same bad input.
    let requests = [
        ("GET", "/v1.41/no/such/route", ""),
        ("GET", "/v1.41/containers/nowhere/json", ""),
        ("GET", "/v1.41/images/nowhere:1/json", ""),
        (
            "POST",
            "/v1.41/containers/create",
            r#"{"Image": "nowhere-at-all:1"}"#,
        ),
    ];
    for (method, path, body) in requests {
        let (a, a_text) = http(&ours.socket, method, path, body);
        let (b, b_text) = http(&podman.socket, method, path, body);
        if a != b {
            differ.push(format!(
                "{method} {path}:\n  ours:   {a_text:?}\n  podman: {b_text:?}"
            ));
        }
        assert!(a_text.contains("\"message\""), "{a_text}");
    }
    // Malformed JSON: Docker's 400 (an invalid parameter; Podman 4.3
    // answers 500).
    let (status, text) = http(
        &ours.socket,
        "POST",
        "/v1.41/containers/create",
        "{not json",
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not JSON"), "{text}");
    let left = podman.docker(&["ps", "-aq"]);
    for id in left.stdout.split_whitespace() {
        let _ = podman.docker(&["rm", "-f", id]);
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));

    // The socket is its owner's and its group's: another user, who may
    // reach it (its folder opened to all), is refused.
    let folder = ours.socket.parent().expect("the socket's folder");
    std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o711))
        .expect("chmod");
    let config = tempfile::tempdir().expect("a config folder");
    std::fs::set_permissions(
        config.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let stranger = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", DOCKER])
        .args([
            "-H",
            &format!("unix://{}", ours.socket.display()),
            "version",
        ])
        .env("DOCKER_CONFIG", config.path())
        .output()
        .expect("setpriv runs");
    let stranger: support::Ran = stranger.into();
    assert_ne!(stranger.code, 0, "{stranger:?}");
    assert!(
        stranger.stderr.contains("permission denied"),
        "{stranger:?}"
    );
    let _ = world.cctl_on_host(&["network", "rm", "default"]);
}
