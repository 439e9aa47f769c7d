//! Who may use the server: one user with a password, checked by a basic-auth handshake that
//! issues a bearer token for every later call.

use std::path::Path;

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use tonic::Status;

/// Base64 with or without padding: the Go Flight client (under ADBC) leaves it out.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The user and password the server accepts.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The password from the environment variable `var`, never from the command line
    /// (where other users of the machine could read it).
    pub fn from_env(user: &str, var: &str) -> Result<Self, String> {
        match std::env::var(var) {
            Ok(p) if !p.is_empty() => Ok(Self::new(user, p)),
            _ => Err(format!("the password variable {var} is not set or empty")),
        }
    }

    /// The password from the first line of `path`.
    pub fn from_file(user: &str, path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
        match text.lines().next() {
            Some(p) if !p.is_empty() => Ok(Self::new(user, p.to_string())),
            _ => Err(format!("the password file {} is empty", path.display())),
        }
    }

    fn new(user: &str, password: String) -> Self {
        Self {
            user: user.to_string(),
            password,
        }
    }

    /// Checks an `authorization: Basic ...` header value.
    pub fn check_basic(&self, header: &str) -> Result<(), Status> {
        let encoded = header
            .strip_prefix("Basic ")
            .ok_or_else(|| Status::unauthenticated("log in with a user and password"))?;
        let decoded = BASE64
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Status::unauthenticated("the authorization header is malformed"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| Status::unauthenticated("the authorization header is malformed"))?;
        // Both compared in full, so the time taken tells nothing about how much matched.
        let user_ok = constant_time_eq(user.as_bytes(), self.user.as_bytes());
        let password_ok = constant_time_eq(password.as_bytes(), self.password.as_bytes());
        if user_ok & password_ok {
            Ok(())
        } else {
            Err(Status::unauthenticated("wrong user or password"))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth() {
        let c = Credentials::new("ana", "s3cret:x".to_string());
        let header = |s: &str| format!("Basic {}", BASE64.encode(s));
        assert!(c.check_basic(&header("ana:s3cret:x")).is_ok());
        let short = Credentials::new("ana", "s3cret".to_string());
        let unpadded = header("ana:s3cret").trim_end_matches('=').to_string();
        assert!(unpadded.len() < header("ana:s3cret").len());
        assert!(short.check_basic(&unpadded).is_ok());
        assert!(c.check_basic(&header("ana:s3cret")).is_err());
        assert!(c.check_basic(&header("bob:s3cret:x")).is_err());
        assert!(c.check_basic("Bearer abc").is_err());
        assert!(c.check_basic("Basic !!!").is_err());
    }
}
