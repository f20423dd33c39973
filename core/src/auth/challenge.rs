//! `WWW-Authenticate` / `Proxy-Authenticate` field values as [`Challenge`]s (RFC 9110 §11).
//!
//! Hand-written (no maintained crate parses the whole grammar without pulling in `http` or
//! hyper types): several challenges per field value and several fields, `token68` or
//! `auth-param`s, quoted strings with `\` escapes, case-insensitive scheme and parameter names,
//! and empty list elements (extra commas, whitespace) skipped as RFC 9110 §5.6.1 asks.
//!
//! The comma separates both challenges and parameters; after a comma, `token =` continues the
//! parameters and `token` followed by anything else starts a new challenge.

use std::fmt;

/// One challenge: a scheme and either a `token68` or parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent (`Digest`, `basic`, …); compare it without case.
    pub scheme: String,
    /// The `token68` form (`Negotiate YII…`), if that is what followed the scheme.
    pub token68: Option<String>,
    /// The parameters in order, names as sent, quoted values unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of the first parameter named `name` (any case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when the scheme is `name` (any case).
    pub fn is_scheme(&self, name: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(name)
    }
}

/// Why a field value is not a list of challenges. Carries the byte offset and what was there,
/// never the whole value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed authentication challenge at byte {offset}: {problem}")]
pub struct ChallengeError {
    /// Byte offset in the field value.
    pub offset: usize,
    /// What was wrong.
    pub problem: ChallengeProblem,
}

/// What [`ChallengeError`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeProblem {
    /// A scheme or parameter name was expected; this character was found.
    ExpectedToken(char),
    /// A parameter name was not followed by `=`, or the scheme by a space.
    ExpectedSeparator(char),
    /// A parameter has no value after `=`.
    MissingValue,
    /// A quoted string runs to the end of the value.
    UnterminatedQuote,
    /// A control character where none is allowed.
    ControlCharacter,
    /// Something followed a complete challenge or parameter other than `,`.
    Trailing(char),
}

impl fmt::Display for ChallengeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExpectedToken(c) => write!(f, "expected a scheme or parameter name, found {c:?}"),
            Self::ExpectedSeparator(c) => write!(f, "expected '=' or a space, found {c:?}"),
            Self::MissingValue => f.write_str("a parameter has no value"),
            Self::UnterminatedQuote => f.write_str("a quoted string is not closed"),
            Self::ControlCharacter => f.write_str("a control character"),
            Self::Trailing(c) => write!(f, "expected ',' after a value, found {c:?}"),
        }
    }
}

/// Parses one field value into its challenges (an empty list for an empty value).
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, ChallengeError> {
    Parser { s: value, pos: 0 }.list()
}

/// Parses every field value of `WWW-Authenticate` (or `Proxy-Authenticate`), in order,
/// skipping values that do not parse: one malformed field must not hide a usable challenge in
/// another.
pub fn parse_fields<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    values
        .into_iter()
        .filter_map(|v| parse_challenges(v).ok())
        .flatten()
        .collect()
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn list(mut self) -> Result<Vec<Challenge>, ChallengeError> {
        let mut out = Vec::new();
        loop {
            self.skip_list_separators();
            if self.at_end() {
                return Ok(out);
            }
            out.push(self.challenge()?);
        }
    }

    /// `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, positioned after it (at a `,` or
    /// the end).
    fn challenge(&mut self) -> Result<Challenge, ChallengeError> {
        let scheme = self.token()?.to_string();
        let mut challenge = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        let spaced = self.skip_ows();
        if self.at_end() || self.peek() == Some(',') {
            return Ok(challenge);
        }
        if !spaced {
            return Err(self.error_here(ChallengeProblem::ExpectedSeparator));
        }
        if let Some(token68) = self.token68() {
            challenge.token68 = Some(token68.to_string());
            return self.end_of_element(challenge);
        }
        loop {
            let (name, value) = self.auth_param()?;
            challenge.params.push((name, value));
            self.skip_ows();
            if self.at_end() {
                return Ok(challenge);
            }
            if self.peek() != Some(',') {
                return Err(self.error_here(ChallengeProblem::Trailing));
            }
            let comma = self.pos;
            self.skip_list_separators();
            if self.at_end() || !self.param_follows() {
                // A new challenge (or the end): leave it to the list.
                self.pos = comma;
                return Ok(challenge);
            }
        }
    }

    fn end_of_element(&mut self, challenge: Challenge) -> Result<Challenge, ChallengeError> {
        self.skip_ows();
        match self.peek() {
            None | Some(',') => Ok(challenge),
            Some(_) => Err(self.error_here(ChallengeProblem::Trailing)),
        }
    }

    /// `token68` when it is followed (after whitespace) by `,` or the end; otherwise nothing
    /// is consumed.
    fn token68(&mut self) -> Option<&str> {
        let start = self.pos;
        let rest = &self.s[start..];
        let body = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
            .count();
        if body == 0 {
            return None;
        }
        let pad = rest[body..].bytes().take_while(|&b| b == b'=').count();
        let end = start + body + pad;
        let after = self.s[end..].trim_start_matches([' ', '\t']);
        (after.is_empty() || after.starts_with(',')).then(|| {
            self.pos = end;
            &self.s[start..end]
        })
    }

    /// `token BWS "=" BWS ( token / quoted-string )`.
    fn auth_param(&mut self) -> Result<(String, String), ChallengeError> {
        let name = self.token()?.to_string();
        self.skip_ows();
        if self.peek() != Some('=') {
            return Err(self.error_here(ChallengeProblem::ExpectedSeparator));
        }
        self.pos += 1;
        self.skip_ows();
        let value = match self.peek() {
            Some('"') => self.quoted_string()?,
            Some(c) if is_tchar(c) => self.token()?.to_string(),
            Some(c) if is_ctl(c) => return Err(self.error(ChallengeProblem::ControlCharacter)),
            _ => return Err(self.error(ChallengeProblem::MissingValue)),
        };
        Ok((name, value))
    }

    /// After a comma inside a challenge's parameters: does `token BWS =` follow?
    fn param_follows(&self) -> bool {
        let rest = &self.s[self.pos..];
        let name = rest.chars().take_while(|&c| is_tchar(c)).count();
        name > 0
            && rest[name..]
                .trim_start_matches([' ', '\t'])
                .starts_with('=')
    }

    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) if escaped == '\t' || !is_ctl(escaped) => out.push(escaped),
                    Some((j, _)) => {
                        self.pos += j;
                        return Err(self.error(ChallengeProblem::ControlCharacter));
                    }
                    None => break,
                },
                c if is_ctl(c) && c != '\t' => {
                    self.pos += i;
                    return Err(self.error(ChallengeProblem::ControlCharacter));
                }
                c => out.push(c),
            }
        }
        self.pos = open;
        Err(self.error(ChallengeProblem::UnterminatedQuote))
    }

    fn token(&mut self) -> Result<&str, ChallengeError> {
        let start = self.pos;
        let len: usize = self.s[start..]
            .chars()
            .take_while(|&c| is_tchar(c))
            .map(char::len_utf8)
            .sum();
        if len == 0 {
            return Err(self.error_here(ChallengeProblem::ExpectedToken));
        }
        self.pos += len;
        Ok(&self.s[start..start + len])
    }

    /// Skips spaces and tabs; true if there were any.
    fn skip_ows(&mut self) -> bool {
        let rest = &self.s[self.pos..];
        let skipped = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        self.pos += skipped;
        skipped > 0
    }

    /// Skips empty list elements: commas and whitespace.
    fn skip_list_separators(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t', ',']).len();
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// An error about the character at the current position.
    fn error_here(&self, problem: fn(char) -> ChallengeProblem) -> ChallengeError {
        match self.peek() {
            Some(c) if is_ctl(c) => self.error(ChallengeProblem::ControlCharacter),
            Some(c) => self.error(problem(c)),
            None => self.error(ChallengeProblem::MissingValue),
        }
    }

    fn error(&self, problem: ChallengeProblem) -> ChallengeError {
        ChallengeError {
            offset: self.pos,
            problem,
        }
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_ctl(c: char) -> bool {
    c.is_ascii_control()
}

#[cfg(test)]
mod tests;
