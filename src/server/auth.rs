//! Who may use the server: the users of a users file (`--users`) or one user with a password
//! (`--user`), checked by a basic-auth handshake that issues a bearer token for every later
//! call, or by the user and password sent with every call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use blake2::Blake2bMac;
use blake2::digest::Mac;
use blake2::digest::consts::U32;
use tokio::sync::Semaphore;
use tonic::Status;

use super::Role;
use super::throttle::Throttle;
use super::users::{self, Users, UsersFile};

/// Base64 with or without padding: the Go Flight client (under ADBC) leaves it out.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How long a checked user and password are taken without checking them again: clients
/// that send them with every call would otherwise pay a slow hash per call.
const REMEMBER: Duration = Duration::from_secs(5 * 60);

/// Most logins remembered at once.
const MOST_REMEMBERED: usize = 1024;

/// The user and password `--user` gives, one analyst.
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
}

/// The user and password of an `authorization: Basic ...` header.
pub struct Basic {
    pub user: String,
    password: String,
}

impl Basic {
    pub fn parse(header: Option<&str>) -> Result<Self, Status> {
        let encoded = header
            .and_then(|h| h.strip_prefix("Basic "))
            .ok_or_else(|| Status::unauthenticated("log in with a user and password"))?;
        let malformed = || Status::unauthenticated("the authorization header is malformed");
        let decoded = BASE64
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(malformed)?;
        let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
        Ok(Self {
            user: user.to_string(),
            password: password.to_string(),
        })
    }
}

/// Who a session belongs to, and so what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub role: Role,
}

impl Login {
    /// The sessions of a server without logins (on loopback only).
    pub fn anonymous() -> Self {
        Self {
            user: "anonymous".to_string(),
            role: Role::Analyst,
        }
    }
}

/// Checks logins: against the accounts, remembering recent successes, and slowing down
/// the guessing of a user's password.
pub struct Logins {
    /// The users with their generation, which changes whenever they are re-read.
    users: Source,
    throttle: Throttle,
    /// Logins checked lately, by a keyed hash of the user and password (never the
    /// password itself), with the generation of the users they were checked against.
    remembered: Mutex<HashMap<[u8; 32], (Login, u64, Instant)>>,
    /// This process's key of that hash, so its values cannot be computed elsewhere.
    key: [u8; 32],
    /// Passwords checked at once, at most one a core: each check takes tens of megabytes,
    /// and a flood of logins must not take all the memory.
    checking: Arc<Semaphore>,
}

enum Source {
    /// `--user`: one analyst.
    One(Arc<Users>),
    /// `--users FILE`, re-read when it changes.
    File(Arc<UsersFile>),
}

impl Logins {
    /// The one analyst of `--user`, whose password is hashed like a users file's.
    pub fn one(credentials: Credentials) -> Result<Self, String> {
        let users = Users::one(&credentials.user, Role::Analyst, &credentials.password)?;
        Ok(Self::new(Source::One(Arc::new(users))))
    }

    /// The users of a users file.
    pub fn file(file: Arc<UsersFile>) -> Self {
        Self::new(Source::File(file))
    }

    fn new(users: Source) -> Self {
        users::prepare();
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            users,
            throttle: Throttle::default(),
            remembered: Mutex::new(HashMap::new()),
            key,
            checking: Arc::new(Semaphore::new(cores)),
        }
    }

    /// The login of `basic`, or an error that says only that the user or password is
    /// wrong. `peer` is named in the log when a user's logins start being slowed down.
    pub async fn check(&self, basic: &Basic, peer: Option<SocketAddr>) -> Result<Login, Status> {
        let (users, generation) = match &self.users {
            Source::One(users) => (users.clone(), 0),
            Source::File(file) => file.current(),
        };
        let fingerprint = self.fingerprint(basic);
        if let Some(login) = self.recall(&fingerprint, generation) {
            self.throttle.succeeded(&basic.user);
            return Ok(login);
        }
        let attempt = self.throttle.attempt(&basic.user, Instant::now());
        if attempt.starts_waiting {
            eprintln!(
                "cohort: repeated failed logins as {} (the last from {}); further attempts \
                 wait, up to 30 s each",
                basic.user,
                peer.map_or_else(|| "an unknown address".to_string(), |p| p.ip().to_string())
            );
        }
        if !attempt.wait.is_zero() {
            tokio::time::sleep(attempt.wait).await;
        }
        let failed = |e: &dyn std::fmt::Display| {
            Status::internal(format!("checking a password failed: {e}"))
        };
        // Held by the check itself, which goes on if the client goes away.
        let permit = self.checking.clone().acquire_owned().await;
        let permit = permit.map_err(|e| failed(&e))?;
        let (user, password) = (basic.user.clone(), basic.password.clone());
        let role = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            users.verify(&user, &password)
        })
        .await
        .map_err(|e| failed(&e))?;
        let Some(role) = role else {
            return Err(Status::unauthenticated("wrong user or password"));
        };
        self.throttle.succeeded(&basic.user);
        let login = Login {
            user: basic.user.clone(),
            role,
        };
        self.remember(fingerprint, &login, generation);
        Ok(login)
    }

    fn fingerprint(&self, basic: &Basic) -> [u8; 32] {
        let mut mac = <Blake2bMac<U32> as Mac>::new_from_slice(&self.key)
            .expect("32 bytes is a valid blake2b key");
        // The user's length first, so no other split of the same bytes hashes alike.
        mac.update(&(basic.user.len() as u64).to_le_bytes());
        mac.update(basic.user.as_bytes());
        mac.update(basic.password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn recall(&self, fingerprint: &[u8; 32], generation: u64) -> Option<Login> {
        let remembered = self.remembered.lock().ok()?;
        match remembered.get(fingerprint) {
            Some((login, g, at)) if *g == generation && at.elapsed() < REMEMBER => {
                Some(login.clone())
            }
            _ => None,
        }
    }

    fn remember(&self, fingerprint: [u8; 32], login: &Login, generation: u64) {
        let Ok(mut remembered) = self.remembered.lock() else {
            return;
        };
        if remembered.len() >= MOST_REMEMBERED {
            remembered.retain(|_, (_, g, at)| *g == generation && at.elapsed() < REMEMBER);
        }
        if remembered.len() >= MOST_REMEMBERED {
            remembered.clear();
        }
        remembered.insert(fingerprint, (login.clone(), generation, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(s: &str) -> String {
        format!("Basic {}", BASE64.encode(s))
    }

    #[test]
    fn basic_headers() {
        let b = Basic::parse(Some(&header("ana:s3cret:x"))).unwrap();
        assert_eq!((b.user.as_str(), b.password.as_str()), ("ana", "s3cret:x"));
        let unpadded = header("ana:s3cret").trim_end_matches('=').to_string();
        assert!(unpadded.len() < header("ana:s3cret").len());
        assert_eq!(Basic::parse(Some(&unpadded)).unwrap().password, "s3cret");
        for bad in [None, Some("Bearer abc"), Some("Basic !!!")] {
            assert!(Basic::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Basic::parse(Some(&header("no colon"))).is_err());
    }

    #[tokio::test]
    async fn logins_checked_and_remembered() {
        let c = Credentials::new("ana", "s3cret".to_string());
        let logins = Logins::one(c).unwrap();
        let basic = |s: &str| Basic::parse(Some(&header(s))).unwrap();
        let login = logins.check(&basic("ana:s3cret"), None).await.unwrap();
        assert_eq!(login.role, Role::Analyst);
        assert_eq!(login.user, "ana");
        for wrong in ["ana:s3cre", "bob:s3cret", "ana:"] {
            let e = logins.check(&basic(wrong), None).await.unwrap_err();
            assert_eq!(e.message(), "wrong user or password");
        }
        assert_eq!(logins.remembered.lock().unwrap().len(), 1);
        assert_ne!(
            logins.fingerprint(&basic("ab:c")),
            logins.fingerprint(&basic("a:bc"))
        );
        // Remembered: the second check does not hash the password again.
        let start = Instant::now();
        for _ in 0..100 {
            logins.check(&basic("ana:s3cret"), None).await.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn a_changed_file_forgets_remembered_logins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let mut users = Users::default();
        users.add("ana", Role::Admin, "pw").unwrap();
        users.add("bob", Role::Reader, "pw").unwrap();
        users.save(&path).unwrap();
        let file = Arc::new(UsersFile::open(&path).unwrap());
        let logins = Logins::file(file);
        let ana = Basic::parse(Some(&header("ana:pw"))).unwrap();
        assert_eq!(logins.check(&ana, None).await.unwrap().role, Role::Admin);
        users.remove("ana").unwrap();
        users.save(&path).unwrap();
        assert!(logins.check(&ana, None).await.is_err());
        let bob = Basic::parse(Some(&header("bob:pw"))).unwrap();
        assert_eq!(logins.check(&bob, None).await.unwrap().role, Role::Reader);
    }
}
