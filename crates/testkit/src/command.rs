//! Running the third-party tools the kit is built on, with errors that quote them.

use std::process::{Command, Output};

use crate::{Error, Result};

/// How much of a failed command's output an error quotes.
const QUOTED_OUTPUT: usize = 4000;

/// Renders `command` as a shell would show it.
pub(crate) fn display(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last [`QUOTED_OUTPUT`] bytes of `bytes`, as text.
pub(crate) fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(QUOTED_OUTPUT);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The error for a `command` that could not start: a missing program says
/// to run setup.
pub(crate) fn start_error(command: &Command, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::NotFound {
        Error::MissingProgram {
            program: command.get_program().to_string_lossy().into_owned(),
            source,
        }
    } else {
        Error::CommandFailed {
            command: display(command),
            status: "could not start".to_owned(),
            output: source.to_string(),
        }
    }
}

/// Runs `command` to completion and returns its output; a failure to start or a
/// non-zero exit is an error quoting the command and what it printed.
pub(crate) fn run(command: &mut Command) -> Result<Output> {
    let output = command
        .output()
        .map_err(|source| start_error(command, source))?;
    if output.status.success() {
        return Ok(output);
    }
    let mut printed = output.stderr.clone();
    printed.extend_from_slice(&output.stdout);
    Err(Error::CommandFailed {
        command: display(command),
        status: output.status.to_string(),
        output: tail(&printed),
    })
}

/// Runs `command` and returns its standard output as text.
pub(crate) fn stdout(command: &mut Command) -> Result<String> {
    let output = run(command)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
