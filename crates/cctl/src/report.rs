//! An error as one line for the user: the message and each cause, as
//! anyhow's `{:#}` shows them, but a cause the message before it already
//! quotes is not repeated (library errors often say `"{path}: {source}"` and
//! keep `source` as their cause too, which `{:#}` would print twice).

/// `error` and its causes on one line, each said once.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// An error that quotes its cause and keeps it as its source.
    #[derive(Debug)]
    struct Quoting {
        source: std::io::Error,
    }

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "/no/such/file: {}", self.source)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_quoted_cause_is_said_once_and_others_are_kept() {
        let quoting = anyhow::Error::new(Quoting {
            source: std::io::Error::from_raw_os_error(2),
        });
        assert_eq!(
            one_line(&quoting),
            "/no/such/file: No such file or directory (os error 2)"
        );
        let wrapped = quoting.context("cannot read the env file");
        assert_eq!(
            one_line(&wrapped),
            "cannot read the env file: /no/such/file: No such file or directory (os error 2)"
        );
    }
}
