//! `SetNotifyCmdLine`: a program run when the job reaches TRANSFERRED or ERROR.

use serde::{Deserialize, Serialize};

use crate::codes;
use crate::error::BitsError;

/// BITS' MAX_PATH, including the NUL.
const MAX_PROGRAM_CHARS_WITH_NUL: usize = 260;
/// BITS' limit on the parameters, in characters.
const MAX_PARAMETERS_CHARS: usize = 4_000;

/// A checked notification command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NotifyCmdLine {
    /// The program, an absolute path (no search path is used).
    pub(crate) program: String,
    /// BITS' parameters: a command line whose first word is the program itself.
    pub(crate) parameters: Option<String>,
}

impl NotifyCmdLine {
    /// BITS' rules: `None, None` clears (`Ok(None)`); parameters without a program,
    /// a relative program, or parameters that are not a well-formed command line are
    /// `E_INVALIDARG`; too long is `BG_E_STRING_TOO_LONG`.
    pub(crate) fn new(
        program: Option<&str>,
        parameters: Option<&str>,
    ) -> Result<Option<Self>, BitsError> {
        let invalid = |why: String| BitsError::new(codes::E_INVALIDARG, why);
        let Some(program) = program else {
            return match parameters {
                None => Ok(None),
                Some(_) => Err(invalid(
                    "parameters were given without a program to run".into(),
                )),
            };
        };
        let chars = program.chars().count();
        if chars + 1 > MAX_PROGRAM_CHARS_WITH_NUL {
            return Err(BitsError::new(
                codes::BG_E_STRING_TOO_LONG,
                format!(
                    "the program path is {chars} characters; the limit is {} (MAX_PATH)",
                    MAX_PROGRAM_CHARS_WITH_NUL - 1
                ),
            ));
        }
        if !program.starts_with('/') {
            return Err(invalid(format!(
                "the program {program:?} must be an absolute path (no search path is used)"
            )));
        }
        if let Some(parameters) = parameters {
            let chars = parameters.chars().count();
            if chars > MAX_PARAMETERS_CHARS {
                return Err(BitsError::new(
                    codes::BG_E_STRING_TOO_LONG,
                    format!(
                        "the parameters are {chars} characters; the limit is {MAX_PARAMETERS_CHARS}"
                    ),
                ));
            }
            split(parameters).map_err(invalid)?;
        }
        Ok(Some(Self {
            program: program.to_string(),
            parameters: parameters.map(str::to_string),
        }))
    }

    /// The arguments after the program name: the parameters' words, the first one (the
    /// program itself, as BITS wants it) left out.
    pub(crate) fn args(&self) -> Vec<String> {
        let words = self
            .parameters
            .as_deref()
            .map(|p| split(p).unwrap_or_default())
            .unwrap_or_default();
        words.into_iter().skip(1).collect()
    }
}

/// Splits parameters into words with POSIX-shell quoting (quotes and backslashes group and
/// escape; nothing is expanded, substituted or interpreted — no shell ever runs).
fn split(parameters: &str) -> Result<Vec<String>, String> {
    // shlex: the maintained crate for POSIX word splitting; hand-writing quoting rules invites bugs.
    shlex::split(parameters).ok_or_else(|| {
        format!(
            "the parameters {parameters:?} are not a well-formed command line (unbalanced quote?)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_arrive_literally_without_the_program_word() {
        let cmd = NotifyCmdLine::new(
            Some("/usr/local/bin/notify"),
            Some(r#"notify "a b" ';' '$(rm -rf /)' x;y $HOME"#),
        )
        .unwrap()
        .unwrap();
        assert_eq!(cmd.args(), ["a b", ";", "$(rm -rf /)", "x;y", "$HOME"]);
    }

    #[test]
    fn bits_rules_for_the_arguments() {
        assert_eq!(NotifyCmdLine::new(None, None), Ok(None));
        let code = |p: Option<&str>, a: Option<&str>| NotifyCmdLine::new(p, a).unwrap_err().code();
        assert_eq!(code(None, Some("x")), codes::E_INVALIDARG);
        assert_eq!(code(Some("notify"), None), codes::E_INVALIDARG);
        assert_eq!(code(Some("/bin/x"), Some("x 'open")), codes::E_INVALIDARG);
        let long = format!("/{}", "p".repeat(259));
        assert_eq!(code(Some(&long), None), codes::BG_E_STRING_TOO_LONG);
        assert!(NotifyCmdLine::new(Some(&long[..259]), None).is_ok());
        let params = "a".repeat(4_001);
        assert_eq!(
            code(Some("/bin/x"), Some(&params)),
            codes::BG_E_STRING_TOO_LONG
        );
        assert!(NotifyCmdLine::new(Some("/bin/x"), Some(&params[..4_000])).is_ok());
    }
}
