//! The command a container runs: the image's `Entrypoint` and `Cmd` merged
//! with `--entrypoint` and the arguments after the image name, as
//! `docker run` merges them.

use crate::Error;

/// The program and its arguments.
///
/// - The image's `Entrypoint` comes first, then its `Cmd`.
/// - Arguments after the image name replace `Cmd`.
/// - `--entrypoint X` replaces `Entrypoint` with the one word `X` (never
///   split on spaces) and drops the image's `Cmd`; `--entrypoint ""` clears
///   `Entrypoint` and drops `Cmd` too, leaving only the arguments.
pub(crate) fn command(
    image_entrypoint: &[String],
    image_cmd: &[String],
    entrypoint: Option<&str>,
    args: &[String],
) -> Result<Vec<String>, Error> {
    let mut command: Vec<String> = match entrypoint {
        Some("") => Vec::new(),
        Some(program) => vec![program.to_owned()],
        None => image_entrypoint.to_vec(),
    };
    if !args.is_empty() {
        command.extend_from_slice(args);
    } else if entrypoint.is_none() {
        command.extend_from_slice(image_cmd);
    }
    if command.is_empty() {
        return Err(Error::InvalidOption {
            option: "command".into(),
            detail: "no command: the image has no Entrypoint or Cmd; give one after the image name"
                .into(),
        });
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn image_entrypoint_then_image_cmd() {
        let got = command(&strings(&["/entry"]), &strings(&["-x"]), None, &[]).unwrap();
        assert_eq!(got, strings(&["/entry", "-x"]));
    }

    #[test]
    fn cmd_alone_is_the_command() {
        let got = command(&[], &strings(&["sh", "-c", "true"]), None, &[]).unwrap();
        assert_eq!(got, strings(&["sh", "-c", "true"]));
    }

    #[test]
    fn arguments_replace_cmd_but_keep_entrypoint() {
        let got = command(
            &strings(&["/entry"]),
            &strings(&["-x"]),
            None,
            &strings(&["a", "b"]),
        )
        .unwrap();
        assert_eq!(got, strings(&["/entry", "a", "b"]));
    }

    #[test]
    fn entrypoint_flag_replaces_entrypoint_and_drops_cmd() {
        let got = command(
            &strings(&["/entry"]),
            &strings(&["-x"]),
            Some("/bin/ls"),
            &[],
        )
        .unwrap();
        assert_eq!(got, strings(&["/bin/ls"]));
    }

    #[test]
    fn entrypoint_flag_is_one_word_even_with_spaces() {
        let got = command(&[], &[], Some("ls -l"), &strings(&["/"])).unwrap();
        assert_eq!(got, strings(&["ls -l", "/"]));
    }

    #[test]
    fn entrypoint_flag_keeps_arguments() {
        let got = command(&[], &strings(&["-x"]), Some("/bin/ls"), &strings(&["-l"])).unwrap();
        assert_eq!(got, strings(&["/bin/ls", "-l"]));
    }

    #[test]
    fn empty_entrypoint_flag_clears_entrypoint_and_cmd() {
        let got = command(
            &strings(&["/entry"]),
            &strings(&["-x"]),
            Some(""),
            &strings(&["echo", "hi"]),
        )
        .unwrap();
        assert_eq!(got, strings(&["echo", "hi"]));
        let err = command(&strings(&["/entry"]), &strings(&["-x"]), Some(""), &[]).unwrap_err();
        assert!(err.to_string().contains("no command"), "{err}");
    }

    #[test]
    fn nothing_to_run_is_an_error_naming_the_fix() {
        let err = command(&[], &[], None, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid command: no command: the image has no Entrypoint or Cmd; \
             give one after the image name"
        );
    }
}
