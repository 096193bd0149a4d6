//! Docker's container verbs beyond run, start, stop and rm: `wait`,
//! `restart`, `port`, `top` and `attach`, as Docker's CLI answers them.

use std::time::Duration;

use containerization::{ContainerManager, StdioConfig, spec};
use tokio::io::AsyncReadExt;

/// Waits until each container's first process ended (and its owner let
/// go of it), printing each exit code as Docker's `wait` does.
pub async fn wait(manager: &ContainerManager, names: &[String]) -> anyhow::Result<i32> {
    for name in names {
        let container = manager.get(name)?;
        loop {
            let state = match container.state() {
                Ok(state) => state,
                // Removed (`--rm`) once it ended.
                Err(containerization::Error::ContainerNotFound(_)) => break,
                Err(e) => return Err(e.into()),
            };
            if !state.is_running() && !state.owner_alive() {
                println!("{}", state.exit_code.unwrap_or(0));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(0)
}

/// Stops each container that runs (`timeout` before SIGKILL), then starts
/// it in the background under a monitor.
pub async fn restart(
    manager: &ContainerManager,
    names: &[String],
    timeout: Duration,
) -> anyhow::Result<i32> {
    for name in names {
        let mut container = manager.get(name)?;
        container.stop(timeout).await?;
        // Its old monitor goes before a new one starts.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while container.state().is_ok_and(|s| s.owner_alive())
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        super::run::start_detached(&container, name).await?;
    }
    Ok(0)
}

/// Prints a container's published ports as Docker's `port` does:
/// `80/tcp -> 0.0.0.0:8080`, or the host side alone for one port.
pub fn port(manager: &ContainerManager, name: &str, only: Option<&str>) -> anyhow::Result<i32> {
    let container = manager.get(name)?;
    let wanted = only.map(|p| match p.split_once('/') {
        Some((port, protocol)) => (port.to_owned(), protocol.to_lowercase()),
        None => (p.to_owned(), "tcp".to_owned()),
    });
    let mut found = false;
    for port in &container.config().ports {
        let protocol = port.protocol.to_string();
        let host = format!(
            "{}:{}",
            port.host_ip
                .map_or("0.0.0.0".to_owned(), |ip| ip.to_string()),
            port.host_port
        );
        match &wanted {
            Some((number, kind)) => {
                if *number == port.container_port.to_string() && *kind == protocol {
                    println!("{host}");
                    found = true;
                }
            }
            None => println!("{}/{protocol} -> {host}", port.container_port),
        }
    }
    if let Some((number, kind)) = wanted
        && !found
    {
        anyhow::bail!("no public port '{number}/{kind}' published for {name}");
    }
    Ok(0)
}

/// Runs `ps -o pid,user,args` in the container (its processes live in its
/// VM, not on the host) and prints what it says, itself left out.
pub async fn top(manager: &ContainerManager, name: &str) -> anyhow::Result<i32> {
    let table = processes(manager, name).await?;
    for line in table {
        println!("{line}");
    }
    Ok(0)
}

/// The lines `ps -o pid,user,args` prints in container `name`, its own
/// left out: a header, then a process a line.
pub(crate) async fn processes(
    manager: &ContainerManager,
    name: &str,
) -> anyhow::Result<Vec<String>> {
    const PS: [&str; 3] = ["ps", "-o", "pid,user,args"];
    let container = manager.get(name)?;
    anyhow::ensure!(
        container.state()?.is_running(),
        "container {name} is not running"
    );
    let options = spec::ProcessOptions {
        args: PS.map(str::to_owned).to_vec(),
        ..spec::ProcessOptions::default()
    };
    let stdio = StdioConfig {
        stdin: false,
        stdout: true,
        stderr: false,
        terminal: None,
    };
    let mut process = container.exec(&options, stdio).await?;
    let mut out = String::new();
    if let Some(mut stdout) = process.take_streams().stdout {
        let _ = stdout.read_to_string(&mut out).await;
    }
    let status = process.wait().await?;
    let _ = process.delete().await;
    anyhow::ensure!(
        status.code == 0,
        "ps in container {name} failed ({}): its image needs a ps that takes -o",
        status.code
    );
    let own = PS.join(" ");
    Ok(out
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.ends_with(&own))
        .map(str::to_owned)
        .collect())
}

/// `cctl attach`: `name`'s output from now on here, this terminal's input
/// to it when it was made with `-i` (and `stdin`), until it ends (its exit
/// code) or, with a terminal, `ctrl-p ctrl-q` detaches (0).
pub async fn attach(manager: &ContainerManager, name: &str, stdin: bool) -> anyhow::Result<i32> {
    use std::io::Write;
    let container = manager.get(name)?;
    if !container.state()?.is_running() {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let tty = container.config().terminal;
    let mut reader = containerization::LogReader::new(&container.log_path());
    // Only what comes from now on.
    reader.read_new()?;
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let detaching = std::sync::Arc::clone(&detached);
    let feeding = stdin && container.config().interactive;
    let _raw = (feeding && tty).then(super::attach::RawMode::enter);
    if feeding {
        let socket = tokio::net::UnixStream::connect(container.stdin_socket())
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {name}'s standard input: {e}"))?;
        tokio::spawn(async move {
            if super::detach::copy_until_detached(tokio::io::stdin(), socket, tty).await {
                detaching.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
    }
    loop {
        let records = reader.read_new()?;
        for (stream, bytes) in &records {
            match stream {
                containerization::LogStream::Stdout => std::io::stdout().write_all(bytes)?,
                containerization::LogStream::Stderr => std::io::stderr().write_all(bytes)?,
            }
        }
        std::io::stdout().flush()?;
        let state = container.state()?;
        if records.is_empty() && !state.is_running() {
            return Ok(state.exit_code.unwrap_or(0));
        }
        if detached.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!("\r\nread escape sequence");
            return Ok(0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
