//! `cohort serve --audit-log FILE`: one JSON line per login attempt and per statement, so an
//! administrator can tell who ran what, from where, and how it ended.
//!
//! Lines are appended with one write each, straight to the file (no buffer to lose on a
//! crash). They never hold a password: logins record the user name only, and statements are
//! their SQL text, cut at 4 KiB.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tonic::{Code, Status};

use crate::store::now_rfc3339;

/// Longest statement text kept in a line.
const STATEMENT_BYTES: usize = 4096;

/// The open audit log.
#[derive(Debug)]
pub struct AuditLog {
    file: Mutex<File>,
}

/// What a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Login,
    /// A statement run (or refused) through GetFlightInfo, DoPut or a prepared statement.
    Statement,
    /// A statement prepared: planned, not run.
    Prepare,
}

/// The parts of a line the caller knows.
#[derive(Debug)]
pub struct Entry<'a> {
    pub event: Event,
    pub user: &'a str,
    pub peer: Option<SocketAddr>,
    pub statement: Option<&'a str>,
    /// How it ended: `Ok` with the rows sent or changed, or the status the client got.
    pub outcome: Result<Option<u64>, &'a Status>,
    pub elapsed: Duration,
}

#[derive(Serialize)]
struct Line<'a> {
    /// UTC, to the microsecond.
    time: String,
    event: &'static str,
    user: &'a str,
    peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
    seconds: f64,
}

impl AuditLog {
    /// Opens `path` for appending, creating it readable by its owner only.
    pub fn open(path: &Path) -> Result<Self, String> {
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(path)
            .map_err(|e| format!("cannot open the audit log {}: {e}", path.display()))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Appends one line. A failed write is reported on standard error: the statement it
    /// records has already run, and refusing later ones would not bring the line back.
    pub fn record(&self, entry: &Entry<'_>) {
        let (statement, truncated) = match entry.statement {
            Some(s) => {
                let cut = truncate(s, STATEMENT_BYTES);
                (Some(cut), cut.len() < s.len())
            }
            None => (None, false),
        };
        let (outcome, code, error, rows) = match &entry.outcome {
            Ok(rows) => ("ok", None, None, *rows),
            Err(status) => (
                outcome(entry.event, status.code()),
                Some(format!("{:?}", status.code())),
                Some(status.message()),
                None,
            ),
        };
        let line = Line {
            time: now_rfc3339(),
            event: match entry.event {
                Event::Login => "login",
                Event::Statement => "statement",
                Event::Prepare => "prepare",
            },
            user: entry.user,
            peer: entry.peer.map(|p| p.to_string()),
            statement,
            truncated,
            outcome,
            code,
            error,
            rows,
            seconds: entry.elapsed.as_secs_f64(),
        };
        let mut text = match serde_json::to_string(&line) {
            Ok(text) => text,
            Err(e) => return eprintln!("cohort: cannot write the audit log: {e}"),
        };
        text.push('\n');
        let written = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("an earlier write failed midway"))
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            eprintln!("cohort: cannot write the audit log: {e}");
        }
    }
}

/// The outcome word for a status: what an administrator scans for.
fn outcome(event: Event, code: Code) -> &'static str {
    match code {
        Code::Unauthenticated if event == Event::Login => "failed",
        Code::PermissionDenied | Code::Unauthenticated => "refused",
        Code::DeadlineExceeded => "timeout",
        Code::Cancelled => "cancelled",
        _ => "error",
    }
}

/// The longest prefix of `s` of at most `bytes` bytes that ends on a character boundary.
fn truncate(s: &str, bytes: usize) -> &str {
    if s.len() <= bytes {
        return s;
    }
    let mut end = bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn one_line_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        let peer = Some("127.0.0.1:4000".parse().unwrap());
        log.record(&Entry {
            event: Event::Login,
            user: "ana",
            peer,
            statement: None,
            outcome: Err(&Status::unauthenticated("wrong user or password")),
            elapsed: Duration::from_millis(20),
        });
        let long = format!("SELECT '{}'", "é".repeat(3000));
        log.record(&Entry {
            event: Event::Statement,
            user: "ana",
            peer,
            statement: Some(&long),
            outcome: Ok(Some(1)),
            elapsed: Duration::from_millis(5),
        });
        // Appending to an existing log keeps what it holds.
        let log = AuditLog::open(&path).unwrap();
        log.record(&Entry {
            event: Event::Statement,
            user: "ana",
            peer: None,
            statement: Some("SELECT pg_sleep(100)"),
            outcome: Err(&Status::deadline_exceeded("past the statement timeout")),
            elapsed: Duration::from_secs(2),
        });
        let lines = lines(&path);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["event"], "login");
        assert_eq!(lines[0]["outcome"], "failed");
        assert_eq!(lines[0]["code"], "Unauthenticated");
        assert_eq!(lines[0]["peer"], "127.0.0.1:4000");
        assert!(lines[0].get("statement").is_none());
        let statement = lines[1]["statement"].as_str().unwrap();
        assert!(statement.len() <= STATEMENT_BYTES && statement.len() > 4090);
        assert_eq!(lines[1]["truncated"], true);
        assert_eq!(lines[1]["rows"], 1);
        assert_eq!(lines[2]["outcome"], "timeout");
        assert_eq!(lines[2]["seconds"], 2.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
