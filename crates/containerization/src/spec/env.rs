//! The container's environment, merged as Docker merges it: the image's
//! `Env`, then `--env-file` files in order, then `-e` flags in order. A later
//! value replaces an earlier one of the same name; each name keeps the place
//! where it first appeared.
//!
//! `-e KEY` (no `=`) passes the host's `KEY`; when the host has none, Docker
//! removes `KEY` from the container's environment, the image's value
//! included. A bare `KEY` line in an env file passes the host's value too,
//! but is skipped when the host has none.

use crate::Error;

/// Docker's `PATH` when neither the image nor the user sets one.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An environment being assembled, in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct Environment {
    /// Name and value; `None` for a name removed by `-e KEY`.
    entries: Vec<(String, Option<String>)>,
}

impl Environment {
    /// Sets `name`, in place when it is there already.
    fn set(&mut self, name: &str, value: Option<String>) {
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name.to_owned(), value)),
        }
    }

    /// Adds the image's `Env` entries (`KEY=VALUE`; entries without `=` are
    /// ignored, as Docker does).
    pub(crate) fn add_image(&mut self, entries: &[String]) {
        for entry in entries {
            if let Some((name, value)) = entry.split_once('=')
                && !name.is_empty()
            {
                self.set(name, Some(value.to_owned()));
            }
        }
    }

    /// Adds the lines of an env file (as [`super::parse_env_file`] returns
    /// them): `KEY=VALUE`, or `KEY` for the host's value, skipped when the
    /// host has none.
    pub(crate) fn add_env_file(
        &mut self,
        lines: &[String],
        host_env: &dyn Fn(&str) -> Option<String>,
    ) {
        for line in lines {
            match line.split_once('=') {
                Some((name, value)) => self.set(name, Some(value.to_owned())),
                None => {
                    if let Some(value) = host_env(line) {
                        self.set(line, Some(value));
                    }
                }
            }
        }
    }

    /// Adds one `-e` flag: `KEY=VALUE`, or `KEY` for the host's value
    /// (removing `KEY` when the host has none).
    pub(crate) fn add_flag(
        &mut self,
        flag: &str,
        host_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), Error> {
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag, host_env(flag)),
        };
        if name.is_empty() {
            return Err(Error::InvalidOption {
                option: "--env".into(),
                detail: format!(
                    "{flag:?} has no variable name: write KEY=VALUE, or KEY to pass the host's value"
                ),
            });
        }
        self.set(name, value);
        Ok(())
    }

    /// Puts `name=value` first, before everything else, unless `name` was set
    /// or removed already (Docker lists its defaults first).
    pub(crate) fn default_first(&mut self, defaults: &[(&str, &str)]) {
        let missing: Vec<(String, Option<String>)> = defaults
            .iter()
            .filter(|(name, _)| !self.entries.iter().any(|(n, _)| n == name))
            .map(|(name, value)| ((*name).to_owned(), Some((*value).to_owned())))
            .collect();
        self.entries.splice(0..0, missing);
    }

    /// The `KEY=VALUE` list for the spec, removed names left out.
    pub(crate) fn into_list(self) -> Vec<String> {
        self.entries
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn no_host(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn later_layers_win_and_keep_first_place() {
        let mut env = Environment::default();
        env.add_image(&strings(&["A=image", "B=image"]));
        env.add_env_file(&strings(&["B=file", "C=file"]), &no_host);
        env.add_flag("A=flag", &no_host).unwrap();
        env.add_flag("D=flag", &no_host).unwrap();
        assert_eq!(
            env.into_list(),
            strings(&["A=flag", "B=file", "C=file", "D=flag"])
        );
    }

    #[test]
    fn bare_flag_takes_the_hosts_value() {
        let host = |name: &str| (name == "HOME").then(|| "/home/me".to_owned());
        let mut env = Environment::default();
        env.add_flag("HOME", &host).unwrap();
        assert_eq!(env.into_list(), strings(&["HOME=/home/me"]));
    }

    #[test]
    fn bare_flag_missing_on_the_host_removes_the_variable() {
        let mut env = Environment::default();
        env.add_image(&strings(&["A=image", "B=image"]));
        env.add_flag("A", &no_host).unwrap();
        env.add_flag("Z", &no_host).unwrap();
        assert_eq!(env.into_list(), strings(&["B=image"]));
    }

    #[test]
    fn bare_env_file_line_missing_on_the_host_is_skipped() {
        let mut env = Environment::default();
        env.add_image(&strings(&["A=image"]));
        env.add_env_file(&strings(&["A"]), &no_host);
        assert_eq!(env.into_list(), strings(&["A=image"]));
    }

    #[test]
    fn flag_without_a_name_is_refused() {
        let err = Environment::default().add_flag("=x", &no_host).unwrap_err();
        assert!(err.to_string().contains("no variable name"), "{err}");
    }

    #[test]
    fn defaults_go_first_only_when_unset() {
        let mut env = Environment::default();
        env.add_image(&strings(&["PATH=/bin", "X=1"]));
        env.default_first(&[("PATH", DEFAULT_PATH), ("TERM", "xterm")]);
        assert_eq!(
            env.into_list(),
            strings(&["TERM=xterm", "PATH=/bin", "X=1"])
        );
    }

    #[test]
    fn a_removed_variable_gets_no_default() {
        let mut env = Environment::default();
        env.add_flag("TERM", &no_host).unwrap();
        env.default_first(&[("TERM", "xterm")]);
        assert!(env.into_list().is_empty());
    }
}
