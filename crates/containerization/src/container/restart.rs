//! Restart policies (`--restart`), Docker's: `no`, `on-failure[:N]`,
//! `always`, `unless-stopped`. A container's owner asks
//! [`RestartPolicy::restarts`] after each exit; a user's `stop` or `kill`
//! holds any policy off until the container is started again.

use serde::{Deserialize, Serialize};

use crate::Error;

/// When a container's first process is started again after it exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never (Docker's default).
    #[default]
    No,
    /// After a non-zero exit, at most `max_retries` times (no limit when
    /// `None`).
    OnFailure {
        /// The most restarts.
        max_retries: Option<u32>,
    },
    /// After any exit.
    Always,
    /// After any exit (and when the service starts) unless a user stopped it.
    UnlessStopped,
}

impl RestartPolicy {
    /// Whether it is [`Self::No`].
    pub fn is_no(&self) -> bool {
        *self == Self::No
    }

    /// Whether a container that exited with `code`, restarted `restarts`
    /// times already, starts again; never after a user stopped it.
    ///
    /// ```
    /// use containerization::RestartPolicy;
    /// let policy: RestartPolicy = "on-failure:2".parse().unwrap();
    /// assert!(policy.restarts(1, 1, false));
    /// assert!(!policy.restarts(1, 2, false));
    /// assert!(!policy.restarts(0, 0, false));
    /// assert!(!"always".parse::<RestartPolicy>().unwrap().restarts(0, 9, true));
    /// ```
    pub fn restarts(&self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match *self {
            Self::No => false,
            Self::OnFailure { max_retries } => {
                code != 0 && max_retries.is_none_or(|most| restarts < most)
            }
            Self::Always | Self::UnlessStopped => true,
        }
    }

    /// Docker's name for it (`HostConfig.RestartPolicy.Name`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::No => "no",
            Self::OnFailure { .. } => "on-failure",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
        }
    }

    /// Its retry limit (`MaximumRetryCount`; 0 for none).
    pub fn max_retries(&self) -> u32 {
        match self {
            Self::OnFailure {
                max_retries: Some(most),
            } => *most,
            _ => 0,
        }
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |detail: String| Error::InvalidOption {
            option: "--restart".to_owned(),
            detail,
        };
        let (name, count) = match text.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (text, None),
        };
        let policy = match name {
            "" | "no" => Self::No,
            "always" => Self::Always,
            "unless-stopped" => Self::UnlessStopped,
            "on-failure" => Self::OnFailure {
                max_retries: count
                    .map(|c| {
                        c.parse::<u32>().map_err(|_| {
                            invalid(format!("{text:?}: the retry count must be a number"))
                        })
                    })
                    .transpose()?
                    .filter(|n| *n > 0),
            },
            _ => {
                return Err(invalid(format!(
                    "{text:?}: no, on-failure[:N], always or unless-stopped"
                )));
            }
        };
        if count.is_some() && !matches!(policy, Self::OnFailure { .. }) {
            return Err(invalid(format!(
                "{text:?}: only on-failure takes a retry count"
            )));
        }
        Ok(policy)
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OnFailure {
                max_retries: Some(most),
            } => write!(f, "on-failure:{most}"),
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RestartPolicy;

    #[test]
    fn policies_parse_as_dockers_and_decide_as_dockers() {
        for (text, policy) in [
            ("no", RestartPolicy::No),
            ("always", RestartPolicy::Always),
            ("unless-stopped", RestartPolicy::UnlessStopped),
            ("on-failure", RestartPolicy::OnFailure { max_retries: None }),
            (
                "on-failure:3",
                RestartPolicy::OnFailure {
                    max_retries: Some(3),
                },
            ),
        ] {
            assert_eq!(text.parse::<RestartPolicy>().unwrap(), policy, "{text}");
            assert_eq!(policy.to_string(), text);
        }
        for bad in ["sometimes", "always:2", "on-failure:x", "on-failure:-1"] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad}");
        }
        let always = RestartPolicy::Always;
        assert!(always.restarts(0, 100, false));
        assert!(!always.restarts(0, 0, true));
        let unlimited = RestartPolicy::OnFailure { max_retries: None };
        assert!(unlimited.restarts(1, 1000, false));
        assert!(!unlimited.restarts(0, 0, false));
        assert!(!RestartPolicy::No.restarts(1, 0, false));
        let json = serde_json::to_string(&RestartPolicy::OnFailure {
            max_retries: Some(2),
        })
        .unwrap();
        assert_eq!(
            serde_json::from_str::<RestartPolicy>(&json)
                .unwrap()
                .max_retries(),
            2
        );
    }
}
