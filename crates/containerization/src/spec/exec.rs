//! The process of an `exec`, Docker's way: the container's first process
//! gives the environment, working directory and user; env files and `-e` add
//! to the environment (a bare `KEY` takes the host's value), `-w` and `-u`
//! replace the others.

use oci_spec::runtime::Process;

use super::env::Environment;
use super::env_file::parse_env_file;
use super::process::{ProcessOptions, working_dir};
use super::user::user;
use crate::Error;

/// The process to run for `options` in a container whose first process is
/// `init`; `host_env` looks up the host's environment for `-e KEY`.
pub fn exec_process(
    init: &Process,
    options: &ProcessOptions,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Process, Error> {
    if options.args.first().is_none_or(String::is_empty) {
        return Err(Error::InvalidOption {
            option: "command".into(),
            detail: "name the program to run in the container".into(),
        });
    }
    let mut env = Environment::default();
    env.add_image(init.env().as_deref().unwrap_or_default());
    for path in &options.env_files {
        env.add_env_file(&parse_env_file(path)?, host_env);
    }
    for flag in &options.env {
        env.add_flag(flag, host_env)?;
    }
    if options.terminal {
        env.default_first(&[("TERM", "xterm")]);
    }
    let mut process = init.clone();
    if options
        .workdir
        .as_deref()
        .is_some_and(|dir| !dir.is_empty())
    {
        process.set_cwd(working_dir(options.workdir.as_deref(), None)?);
    }
    if options.user.is_some() {
        process.set_user(user(options.user.as_deref(), None)?);
    }
    process
        .set_terminal(Some(options.terminal))
        .set_args(Some(options.args.clone()))
        .set_env(Some(env.into_list()));
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> Process {
        serde_json::from_value(serde_json::json!({
            "user": {"uid": 1000, "gid": 1000},
            "args": ["sleep", "100"],
            "env": ["PATH=/bin", "A=1"],
            "cwd": "/srv",
            "terminal": false
        }))
        .unwrap()
    }

    fn no_host(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn exec_inherits_env_cwd_and_user_and_overrides_them() {
        let options = ProcessOptions {
            args: vec!["env".into()],
            env: vec!["A=2".into(), "B=3".into()],
            ..Default::default()
        };
        let process = exec_process(&init(), &options, &no_host).unwrap();
        assert_eq!(
            process.env().as_deref().unwrap(),
            ["PATH=/bin", "A=2", "B=3"]
        );
        assert_eq!(process.cwd().to_str(), Some("/srv"));
        assert_eq!(process.user().uid(), 1000);
        let options = ProcessOptions {
            args: vec!["id".into()],
            workdir: Some("/tmp".into()),
            user: Some("nobody".into()),
            terminal: true,
            ..Default::default()
        };
        let process = exec_process(&init(), &options, &no_host).unwrap();
        assert_eq!(process.cwd().to_str(), Some("/tmp"));
        assert_eq!(process.user().username().as_deref(), Some("nobody"));
        assert!(
            process
                .env()
                .as_deref()
                .unwrap()
                .contains(&"TERM=xterm".to_owned())
        );
    }

    #[test]
    fn exec_refuses_no_command_a_relative_workdir_and_a_bad_user() {
        let none = ProcessOptions::default();
        assert!(exec_process(&init(), &none, &no_host).is_err());
        let relative = ProcessOptions {
            args: vec!["ls".into()],
            workdir: Some("tmp".into()),
            ..Default::default()
        };
        let err = exec_process(&init(), &relative, &no_host).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
        let user = ProcessOptions {
            args: vec!["ls".into()],
            user: Some("a:b:c".into()),
            ..Default::default()
        };
        assert!(exec_process(&init(), &user, &no_host).is_err());
    }
}
