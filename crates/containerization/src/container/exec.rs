//! The OCI `process` of an `exec`: Docker's rules. The container's first
//! process gives the environment, working directory and user; `-e` adds to
//! the environment (a bare `KEY` takes the host's value), `-w` and `-u`
//! replace the others.

use serde_json::{Value, json};

use crate::{Error, spec};

/// The process to run for `options` in a container whose first process is
/// `init` (the `process` object of its runtime spec).
pub(crate) fn exec_process(init: &Value, options: &spec::ProcessOptions) -> Result<Value, Error> {
    if options.args.first().is_none_or(String::is_empty) {
        return Err(Error::InvalidOption {
            option: "command".to_owned(),
            detail: "name the program to run in the container".to_owned(),
        });
    }
    let mut env: Vec<String> = init["env"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut added = Vec::new();
    for file in &options.env_files {
        added.extend(spec::parse_env_file(file)?);
    }
    added.extend(options.env.iter().cloned());
    for entry in added {
        let entry = match entry.split_once('=') {
            Some(_) => entry,
            None => match std::env::var(&entry) {
                Ok(value) => format!("{entry}={value}"),
                Err(_) => continue,
            },
        };
        let key = entry.split('=').next().unwrap_or_default().to_owned();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    if options.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    let cwd = match &options.workdir {
        Some(dir) if !dir.starts_with('/') => {
            return Err(Error::InvalidOption {
                option: "--workdir".to_owned(),
                detail: format!("{dir:?} must be an absolute path"),
            });
        }
        Some(dir) => Value::from(dir.as_str()),
        None => init["cwd"].clone(),
    };
    let user = match &options.user {
        Some(user) => user_json(user)?,
        None => init["user"].clone(),
    };
    Ok(json!({
        "terminal": options.terminal,
        "user": user,
        "args": options.args,
        "env": env,
        "cwd": cwd,
        "noNewPrivileges": init["noNewPrivileges"].as_bool().unwrap_or(false),
    }))
}

/// `-u`: `uid[:gid]` as numbers, or a name resolved in the container.
fn user_json(user: &str) -> Result<Value, Error> {
    let bad = || Error::InvalidOption {
        option: "--user".to_owned(),
        detail: format!("{user:?}: use name, uid, name:group or uid:gid"),
    };
    if user.is_empty() || user.matches(':').count() > 1 {
        return Err(bad());
    }
    let (first, second) = match user.split_once(':') {
        Some((a, b)) if a.is_empty() || b.is_empty() => return Err(bad()),
        Some((a, b)) => (a, Some(b)),
        None => (user, None),
    };
    match (first.parse::<u32>(), second.map(str::parse::<u32>)) {
        (Ok(uid), None) => Ok(json!({"uid": uid, "gid": 0, "username": user})),
        (Ok(uid), Some(Ok(gid))) => Ok(json!({"uid": uid, "gid": gid})),
        _ => Ok(json!({"uid": 0, "gid": 0, "username": user})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> Value {
        json!({
            "user": {"uid": 1000, "gid": 1000},
            "args": ["sleep", "100"],
            "env": ["PATH=/bin", "A=1"],
            "cwd": "/srv",
            "terminal": false
        })
    }

    #[test]
    fn exec_inherits_env_cwd_and_user_and_overrides_them() {
        let options = spec::ProcessOptions {
            args: vec!["env".into()],
            env: vec!["A=2".into(), "B=3".into()],
            ..Default::default()
        };
        let process = exec_process(&init(), &options).unwrap();
        assert_eq!(process["env"], json!(["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(process["cwd"], "/srv");
        assert_eq!(process["user"]["uid"], 1000);
        let options = spec::ProcessOptions {
            args: vec!["id".into()],
            workdir: Some("/tmp".into()),
            user: Some("nobody".into()),
            terminal: true,
            ..Default::default()
        };
        let process = exec_process(&init(), &options).unwrap();
        assert_eq!(process["cwd"], "/tmp");
        assert_eq!(process["user"]["username"], "nobody");
        assert!(
            process["env"]
                .as_array()
                .unwrap()
                .contains(&json!("TERM=xterm"))
        );
    }

    #[test]
    fn exec_refuses_no_command_a_relative_workdir_and_a_bad_user() {
        let none = spec::ProcessOptions::default();
        assert!(exec_process(&init(), &none).is_err());
        let relative = spec::ProcessOptions {
            args: vec!["ls".into()],
            workdir: Some("tmp".into()),
            ..Default::default()
        };
        assert!(
            exec_process(&init(), &relative)
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
        let user = spec::ProcessOptions {
            args: vec!["ls".into()],
            user: Some("a:b:c".into()),
            ..Default::default()
        };
        assert!(exec_process(&init(), &user).is_err());
    }
}
