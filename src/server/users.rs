//! The users file of `cohort serve --users`: who may log in, with which role, and a hash of
//! each password (never the password).
//!
//! A text file, one user a line; lines starting with `#` are comments:
//!
//! ```text
//! # NAME ROLE PASSWORD-HASH
//! ana analyst $argon2id$v=19$m=19456,t=2,p=1$...$...
//! ```
//!
//! Names are letters, digits and `_ . - @`; roles are reader, analyst and admin; hashes are
//! argon2id in the PHC string format, each with its own random salt. `cohort users` writes
//! it (keeping comments), atomically and readable by its owner only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};

use super::Role;

/// Longest user name, so names stay readable in listings and logs.
const MAX_NAME: usize = 64;

/// What a new file starts with.
const HEADER: &str = "# cohort users file, written by `cohort users`; one user a line:\n\
                      # NAME ROLE PASSWORD-HASH (argon2id); lines starting with # are comments.\n";

/// One line of the file: a user, or a comment or blank line kept as it is.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    User(User),
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
struct User {
    name: String,
    role: Role,
    hash: String,
}

/// The users of a users file, in the file's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Users {
    lines: Vec<Line>,
}

/// A hash of no one's password with the same parameters as new ones, checked for names that
/// are not in the file so that a login takes as long whether the name exists or not.
static NO_ONE: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    argon2::password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut secret);
    hash(&String::from_utf8_lossy(&secret)).unwrap_or_default()
});

/// Makes the hash checked for unknown names now, so that the first login under one takes
/// no longer than any other.
pub(super) fn prepare() {
    LazyLock::force(&NO_ONE);
}

impl Users {
    /// Reads the file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the users file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("the users file {} {e}", path.display()))
    }

    /// One user, not from a file (`cohort serve --user`).
    pub fn one(name: &str, role: Role, password: &str) -> Result<Self, String> {
        Ok(Self {
            lines: vec![Line::User(User {
                name: name.to_string(),
                role,
                hash: hash(password)?,
            })],
        })
    }

    /// Reads the file at `path`, or no users when it does not exist yet.
    pub fn load_or_new(path: &Path) -> Result<Self, String> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(Self::default())
        }
    }

    /// Parses the text of a users file; errors name the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = Self::default();
        for (i, line) in text.lines().enumerate() {
            let content = line.trim();
            if content.is_empty() || content.starts_with('#') {
                users.lines.push(Line::Other(line.to_string()));
                continue;
            }
            let at = |e: String| format!("line {}: {e}", i + 1);
            let fields: Vec<&str> = content.split_whitespace().collect();
            let [name, role, hash] = fields[..] else {
                return Err(at("expected NAME ROLE PASSWORD-HASH".to_string()));
            };
            check_name(name).map_err(at)?;
            let role = role.parse::<Role>().map_err(at)?;
            check_hash(hash).map_err(at)?;
            if users.find(name).is_some() {
                return Err(at(format!("user {name} appears twice")));
            }
            users.lines.push(Line::User(User {
                name: name.to_string(),
                role,
                hash: hash.to_string(),
            }));
        }
        Ok(users)
    }

    /// Writes the users to `path` through a temporary file beside it, renamed into place,
    /// so that a reader (a running server) sees the old file or the new, never half of one;
    /// owner-only, as the hashes are worth guessing at.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let failed = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut temp = tempfile::Builder::new()
            .prefix(".cohort-users-")
            .tempfile_in(dir)
            .map_err(failed)?;
        // Set, not asked for at creation, so that the umask cannot change it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(failed)?;
        }
        temp.write_all(self.to_text().as_bytes()).map_err(failed)?;
        temp.as_file().sync_all().map_err(failed)?;
        temp.persist(path).map_err(|e| failed(e.error))?;
        Ok(())
    }

    fn to_text(&self) -> String {
        let mut text = String::new();
        if self.lines.is_empty() {
            text.push_str(HEADER);
        }
        for line in &self.lines {
            match line {
                Line::User(u) => text.push_str(&format!("{} {} {}", u.name, u.role, u.hash)),
                Line::Other(other) => text.push_str(other),
            }
            text.push('\n');
        }
        text
    }

    /// The users' names and roles, in the file's order.
    pub fn list(&self) -> impl Iterator<Item = (&str, Role)> {
        self.users().map(|u| (u.name.as_str(), u.role))
    }

    /// Adds a user, with a hash of `password`.
    pub fn add(&mut self, name: &str, role: Role, password: &str) -> Result<(), String> {
        self.check_new(name)?;
        if self.lines.is_empty() {
            self.lines = HEADER.lines().map(|l| Line::Other(l.to_string())).collect();
        }
        self.lines.push(Line::User(User {
            name: name.to_string(),
            role,
            hash: hash(password)?,
        }));
        Ok(())
    }

    /// Whether `name` may be added: a good name, not taken yet.
    pub fn check_new(&self, name: &str) -> Result<(), String> {
        check_name(name)?;
        match self.find(name) {
            Some(_) => Err(format!("user {name} exists already")),
            None => Ok(()),
        }
    }

    /// Whether `name` is one of the users.
    pub fn check_user(&self, name: &str) -> Result<(), String> {
        self.position(name).map(drop)
    }

    pub fn remove(&mut self, name: &str) -> Result<(), String> {
        let i = self.position(name)?;
        self.lines.remove(i);
        Ok(())
    }

    /// Replaces a user's password.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), String> {
        let i = self.position(name)?;
        let hash = hash(password)?;
        if let Line::User(u) = &mut self.lines[i] {
            u.hash = hash;
        }
        Ok(())
    }

    /// The role of `name` when `password` is theirs. Slow on purpose (argon2), and as slow
    /// for a name that is not in the file.
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        let user = self.find(name);
        let hash = user.map_or(NO_ONE.as_str(), |u| u.hash.as_str());
        let matches = PasswordHash::new(hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        user.filter(|_| matches).map(|u| u.role)
    }

    fn users(&self) -> impl Iterator<Item = &User> {
        self.lines.iter().filter_map(|l| match l {
            Line::User(u) => Some(u),
            Line::Other(_) => None,
        })
    }

    fn find(&self, name: &str) -> Option<&User> {
        self.users().find(|u| u.name == name)
    }

    fn position(&self, name: &str) -> Result<usize, String> {
        self.lines
            .iter()
            .position(|l| matches!(l, Line::User(u) if u.name == name))
            .ok_or_else(|| format!("no user named {name}"))
    }
}

/// A user name: letters, digits and `_ . - @`, which need no quoting in the file, in logs or
/// in a login.
pub fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_alphanumeric() || "_.-@".contains(c);
    if name.is_empty() || name.chars().count() > MAX_NAME || !name.chars().all(allowed) {
        return Err(format!(
            "bad user name '{name}': use 1 to {MAX_NAME} letters, digits and _ . - @"
        ));
    }
    Ok(())
}

fn check_hash(hash: &str) -> Result<(), String> {
    match PasswordHash::new(hash) {
        Ok(h) if h.algorithm == Algorithm::Argon2id.ident() && h.hash.is_some() => Ok(()),
        _ => Err("the password hash is not an argon2id PHC string".to_string()),
    }
}

/// An argon2id hash of `password` with a random salt from the operating system.
fn hash(password: &str) -> Result<String, String> {
    if password.is_empty() {
        return Err("the password is empty".to_string());
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// A users file a server reads: re-read when it changes (checked at each login, one `stat`)
/// or when asked (SIGHUP). A file that cannot be read keeps the users of the last good one.
#[derive(Debug)]
pub struct UsersFile {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    /// What the file looked like when last read, good or not.
    stamp: Option<Stamp>,
    users: Arc<Users>,
    /// How many times the users were read again, to tell what was checked against older
    /// users.
    generation: u64,
}

/// Enough of a file's metadata to notice a change: a rewrite through a rename gets a new
/// inode even within the modification time's resolution.
type Stamp = (Option<SystemTime>, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some((m.modified().ok(), m.len(), inode))
}

impl UsersFile {
    /// Reads the file; a server does not start on a file it cannot use.
    pub fn open(path: &Path) -> Result<Self, String> {
        let stamp = stamp(path);
        let users = Users::load(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            loaded: Mutex::new(Loaded {
                stamp,
                users: Arc::new(users),
                generation: 0,
            }),
        })
    }

    /// The users now, re-read first if the file changed, with their generation: it grows
    /// each time they are re-read.
    pub fn current(&self) -> (Arc<Users>, u64) {
        self.refresh(false)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file whether or not it looks changed (SIGHUP); false when it could not
    /// be read.
    pub fn reload(&self) -> bool {
        let before = self.generation();
        self.refresh(true).1 > before
    }

    fn generation(&self) -> u64 {
        self.loaded.lock().map_or(0, |l| l.generation)
    }

    fn refresh(&self, force: bool) -> (Arc<Users>, u64) {
        let mut loaded = match self.loaded.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = stamp(&self.path);
        if force || now != loaded.stamp {
            loaded.stamp = now;
            match Users::load(&self.path) {
                Ok(users) => {
                    loaded.users = Arc::new(users);
                    loaded.generation += 1;
                }
                Err(e) => eprintln!("cohort: {e}; keeping the users read before"),
            }
        }
        (loaded.users.clone(), loaded.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_change_and_remove() {
        let mut users = Users::default();
        users.add("ana", Role::Analyst, "s3cret").unwrap();
        users.add("bob.k@corp", Role::Reader, "hunter2").unwrap();
        assert_eq!(users.verify("ana", "s3cret"), Some(Role::Analyst));
        assert_eq!(users.verify("ana", "hunter2"), None);
        assert_eq!(users.verify("eve", "s3cret"), None);
        assert_eq!(users.verify("bob.k@corp", "hunter2"), Some(Role::Reader));
        assert!(
            users
                .add("ana", Role::Admin, "x")
                .unwrap_err()
                .contains("exists")
        );
        assert!(
            users
                .add("a b", Role::Admin, "x")
                .unwrap_err()
                .contains("bad user name")
        );
        assert!(users.add("a:b", Role::Admin, "x").is_err());
        assert!(users.add("", Role::Admin, "x").is_err());
        assert!(
            users
                .add("carl", Role::Admin, "")
                .unwrap_err()
                .contains("empty")
        );
        users.set_password("ana", "n3w").unwrap();
        assert_eq!(users.verify("ana", "s3cret"), None);
        assert_eq!(users.verify("ana", "n3w"), Some(Role::Analyst));
        users.remove("ana").unwrap();
        assert_eq!(users.verify("ana", "n3w"), None);
        assert!(
            users
                .remove("ana")
                .unwrap_err()
                .contains("no user named ana")
        );
        assert!(users.set_password("ana", "x").is_err());
        let listed: Vec<_> = users.list().collect();
        assert_eq!(listed, [("bob.k@corp", Role::Reader)]);
    }

    #[test]
    fn text_round_trips_with_comments() {
        let mut users = Users::default();
        users.add("ana", Role::Admin, "pw").unwrap();
        let text = users.to_text();
        assert!(text.starts_with("# cohort users file"), "{text}");
        let hash = text.lines().last().unwrap().split(' ').nth(2).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let edited = format!("{text}\n  # the readers\nbob   reader {hash}\n");
        let parsed = Users::parse(&edited).unwrap();
        assert_eq!(parsed.verify("bob", "pw"), Some(Role::Reader));
        assert_eq!(parsed.list().count(), 2);
        let saved = parsed.to_text();
        assert!(
            saved.ends_with(&format!("\n  # the readers\nbob reader {hash}\n")),
            "{saved}"
        );
        assert!(Users::parse(&format!("bob reader {hash} # x")).is_err());
    }

    #[test]
    fn parse_errors_name_the_line() {
        let hash = hash("pw").unwrap();
        let cases = [
            ("ana analyst".to_string(), "line 1: expected NAME ROLE"),
            (
                format!("# x\nana chief {hash}"),
                "line 2: unknown role 'chief'",
            ),
            (format!("a/b reader {hash}"), "line 1: bad user name"),
            ("ana reader plaintext".to_string(), "not an argon2id"),
            (
                "ana reader $argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA".to_string(),
                "not an argon2id",
            ),
            (
                format!("ana reader {hash}\nana admin {hash}"),
                "line 2: user ana appears twice",
            ),
        ];
        for (text, message) in cases {
            let e = Users::parse(&text).unwrap_err();
            assert!(e.contains(message), "{text}: {e}");
        }
    }

    #[test]
    fn saved_owner_only_and_reloaded_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let mut users = Users::default();
        users.add("ana", Role::Analyst, "pw").unwrap();
        users.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            // Kept on a rewrite, even of a file someone opened up.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(" pw") && text.contains("$argon2id$"),
            "{text}"
        );
        assert_eq!(Users::load(&path).unwrap(), users);

        let file = UsersFile::open(&path).unwrap();
        assert_eq!(file.current().1, 0);
        users.add("bob", Role::Reader, "pw2").unwrap();
        users.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (now, generation) = file.current();
        assert_eq!(generation, 1);
        assert_eq!(now.verify("bob", "pw2"), Some(Role::Reader));
        assert!(file.reload());
        assert_eq!(file.current().1, 2);
        // A broken file keeps the users read before.
        std::fs::write(&path, "bob nobody x\n").unwrap();
        let (now, generation) = file.current();
        assert_eq!(generation, 2);
        assert_eq!(now.verify("bob", "pw2"), Some(Role::Reader));
        assert!(!file.reload());
        assert!(UsersFile::open(&path).is_err());
        assert!(
            Users::load_or_new(&dir.path().join("none"))
                .unwrap()
                .list()
                .next()
                .is_none()
        );
    }
}
