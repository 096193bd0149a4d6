//! The container's process: command, environment, working folder, user and
//! terminal, from the image's config and the user's options, as `docker run`
//! builds them.
//!
//! No capabilities are set (`vminitd` then applies Docker's default set) and
//! `noNewPrivileges` is off, Docker's default.

use std::path::{Path, PathBuf};

use oci_spec::image::{Config, ImageConfiguration};
use oci_spec::runtime::Process;

use super::args::command;
use super::env::{DEFAULT_PATH, Environment};
use super::env_file::parse_env_file;
use super::user::user;
use crate::Error;

/// What the user asked for the process, `docker run`'s flags.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    /// `--entrypoint`: one word, never split; `Some("")` clears the image's.
    pub entrypoint: Option<String>,
    /// The arguments after the image name; they replace the image's `Cmd`.
    pub args: Vec<String>,
    /// `-e`: `KEY=VALUE`, or `KEY` for the host's value.
    pub env: Vec<String>,
    /// `--env-file`, read in order, before `-e`.
    pub env_files: Vec<PathBuf>,
    /// `-w`: an absolute path in the container.
    pub workdir: Option<String>,
    /// `-u`: `name`, `uid`, `name:group` or `uid:gid`.
    pub user: Option<String>,
    /// `-t`: a terminal; also sets `TERM=xterm` unless `TERM` is set.
    pub terminal: bool,
}

/// The process to run for `config` and `options`; `host_env` looks up the
/// host's environment for `-e KEY` and bare env-file keys.
pub fn process(
    config: &ImageConfiguration,
    options: &ProcessOptions,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Process, Error> {
    build(config, options, host_env, None)
}

/// [`process`], with `HOSTNAME` set (unless the user set it) when `hostname`
/// is given.
pub(crate) fn build(
    config: &ImageConfiguration,
    options: &ProcessOptions,
    host_env: &dyn Fn(&str) -> Option<String>,
    hostname: Option<&str>,
) -> Result<Process, Error> {
    let image = config.config().clone().unwrap_or_default();
    let args = command(
        image.entrypoint().as_deref().unwrap_or_default(),
        image.cmd().as_deref().unwrap_or_default(),
        options.entrypoint.as_deref(),
        &options.args,
    )?;
    let env = environment(&image, options, host_env, hostname)?;
    let cwd = working_dir(options.workdir.as_deref(), image.working_dir().as_deref())?;
    let user = user(options.user.as_deref(), image.user().as_deref())?;

    let mut process = Process::default();
    process
        .set_terminal(Some(options.terminal))
        .set_args(Some(args))
        .set_env(Some(env))
        .set_cwd(cwd)
        .set_user(user)
        .set_capabilities(None)
        .set_rlimits(None)
        .set_no_new_privileges(Some(false));
    Ok(process)
}

/// The environment: image, env files, `-e`; then Docker's defaults for
/// whatever nobody set.
fn environment(
    image: &Config,
    options: &ProcessOptions,
    host_env: &dyn Fn(&str) -> Option<String>,
    hostname: Option<&str>,
) -> Result<Vec<String>, Error> {
    let mut env = Environment::default();
    env.add_image(image.env().as_deref().unwrap_or_default());
    for path in &options.env_files {
        env.add_env_file(&parse_env_file(path)?, host_env);
    }
    for flag in &options.env {
        env.add_flag(flag, host_env)?;
    }
    let mut defaults = vec![("PATH", DEFAULT_PATH)];
    if let Some(hostname) = hostname {
        defaults.push(("HOSTNAME", hostname));
    }
    if options.terminal {
        defaults.push(("TERM", "xterm"));
    }
    env.default_first(&defaults);
    Ok(env.into_list())
}

/// `-w`, else the image's `WorkingDir`, else `/`; it must be absolute.
pub(crate) fn working_dir(flag: Option<&str>, image: Option<&str>) -> Result<PathBuf, Error> {
    let (dir, option) = match (flag, image) {
        (Some(dir), _) if !dir.is_empty() => (dir, "--workdir"),
        (_, Some(dir)) if !dir.is_empty() => (dir, "image WorkingDir"),
        _ => return Ok(PathBuf::from("/")),
    };
    if !Path::new(dir).is_absolute() {
        return Err(Error::InvalidOption {
            option: option.into(),
            detail: format!("the working directory {dir:?} must be an absolute path, such as /app"),
        });
    }
    Ok(PathBuf::from(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image config with `config` as its `config` object.
    fn image(config: &str) -> ImageConfiguration {
        serde_json::from_str(&format!(
            r#"{{"architecture":"amd64","os":"linux",
                "rootfs":{{"type":"layers","diff_ids":[]}},"config":{config}}}"#
        ))
        .unwrap()
    }

    fn no_host(_: &str) -> Option<String> {
        None
    }

    fn run(config: &str, options: &ProcessOptions) -> Result<Process, Error> {
        process(&image(config), options, &no_host)
    }

    fn env_of(process: &Process) -> Vec<String> {
        process.env().clone().unwrap_or_default()
    }

    #[test]
    fn image_without_config_and_no_command_is_an_error() {
        let config: ImageConfiguration = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        let err = process(&config, &ProcessOptions::default(), &no_host).unwrap_err();
        assert!(
            err.to_string().contains("give one after the image name"),
            "{err}"
        );
    }

    #[test]
    fn defaults_are_dockers() {
        let p = run(r#"{"Cmd":["sh"]}"#, &ProcessOptions::default()).unwrap();
        assert_eq!(p.args().as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(env_of(&p), [format!("PATH={DEFAULT_PATH}")]);
        assert_eq!(p.cwd(), Path::new("/"));
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.capabilities(), &None);
        assert_eq!(p.no_new_privileges(), Some(false));
        assert_eq!(p.rlimits(), &None);
    }

    #[test]
    fn env_precedence_is_image_then_files_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.env");
        let second = dir.path().join("second.env");
        std::fs::write(&first, "# first\nA=file1\nB=file1\nSHELL_HOME\n").unwrap();
        std::fs::write(&second, "B=file2\nC=file2\n").unwrap();
        let options = ProcessOptions {
            env_files: vec![first, second],
            env: vec!["C=flag".into(), "USER".into(), "GONE".into()],
            ..Default::default()
        };
        let host = |name: &str| match name {
            "USER" => Some("me".to_owned()),
            "SHELL_HOME" => Some("/home/me".to_owned()),
            _ => None,
        };
        let config = image(r#"{"Cmd":["sh"],"Env":["PATH=/bin","A=image","GONE=image"]}"#);
        let p = process(&config, &options, &host).unwrap();
        assert_eq!(
            env_of(&p),
            [
                "PATH=/bin",
                "A=file1",
                "B=file2",
                "SHELL_HOME=/home/me",
                "C=flag",
                "USER=me",
            ]
        );
    }

    #[test]
    fn terminal_sets_term_unless_given() {
        let options = ProcessOptions {
            terminal: true,
            ..Default::default()
        };
        let p = run(r#"{"Cmd":["sh"]}"#, &options).unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert!(env_of(&p).contains(&"TERM=xterm".to_owned()));
        let p = run(r#"{"Cmd":["sh"],"Env":["TERM=vt100"]}"#, &options).unwrap();
        assert!(env_of(&p).contains(&"TERM=vt100".to_owned()));
        assert!(!env_of(&p).contains(&"TERM=xterm".to_owned()));
    }

    #[test]
    fn bad_env_file_fails_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.env");
        std::fs::write(&path, "GOOD=1\nBAD KEY=2\n").unwrap();
        let options = ProcessOptions {
            env_files: vec![path],
            ..Default::default()
        };
        let err = run(r#"{"Cmd":["sh"]}"#, &options).unwrap_err();
        assert!(err.to_string().contains("bad.env line 2"), "{err}");
    }

    #[test]
    fn workdir_flag_then_image_then_root() {
        let options = ProcessOptions {
            workdir: Some("/srv".into()),
            ..Default::default()
        };
        let p = run(r#"{"Cmd":["sh"],"WorkingDir":"/app"}"#, &options).unwrap();
        assert_eq!(p.cwd(), Path::new("/srv"));
        let p = run(
            r#"{"Cmd":["sh"],"WorkingDir":"/app"}"#,
            &ProcessOptions::default(),
        )
        .unwrap();
        assert_eq!(p.cwd(), Path::new("/app"));
        let p = run(
            r#"{"Cmd":["sh"],"WorkingDir":""}"#,
            &ProcessOptions::default(),
        )
        .unwrap();
        assert_eq!(p.cwd(), Path::new("/"));
    }

    #[test]
    fn relative_workdir_is_an_error() {
        let options = ProcessOptions {
            workdir: Some("app".into()),
            ..Default::default()
        };
        let err = run(r#"{"Cmd":["sh"]}"#, &options).unwrap_err();
        assert!(err.to_string().starts_with("invalid --workdir: "), "{err}");
        assert!(err.to_string().contains("absolute"), "{err}");
    }

    #[test]
    fn image_user_applies_unless_flag_given() {
        let p = run(
            r#"{"Cmd":["sh"],"User":"nginx"}"#,
            &ProcessOptions::default(),
        )
        .unwrap();
        assert_eq!(p.user().username().as_deref(), Some("nginx"));
        let options = ProcessOptions {
            user: Some("0:0".into()),
            ..Default::default()
        };
        let p = run(r#"{"Cmd":["sh"],"User":"nginx"}"#, &options).unwrap();
        assert_eq!(p.user().username(), &None);
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    }
}
