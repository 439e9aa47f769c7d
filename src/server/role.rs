//! What a user of `cohort serve` may do, from least to most.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role; each includes everything the roles before it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Queries, every scoring and reporting function, SHOW and DESCRIBE MODEL.
    Reader,
    /// A reader who may also create, replace and drop models, and make views and tables
    /// of its own session.
    Analyst,
    /// An analyst who may also use files inside the allowed folders and change shared
    /// tables.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Reader, Role::Analyst, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown role '{s}'; the roles are reader, analyst and admin"))
    }
}
