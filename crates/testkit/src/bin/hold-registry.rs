//! Starts an anonymous test registry, prints its process id, and waits to be
//! killed. The orphan test kills this process with SIGKILL and checks that the
//! registry does not outlive it.

use std::io::Write;

fn main() -> Result<(), containerization_testkit::Error> {
    let registry = containerization_testkit::Registry::anonymous()?;
    let mut stdout = std::io::stdout();
    // The test reads this line; if it cannot be written, nobody is listening.
    let _ = writeln!(stdout, "{}", registry.pid()).and_then(|()| stdout.flush());
    loop {
        std::thread::park();
    }
}
