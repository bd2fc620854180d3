//! Users of the status page, their roles, passwords and staff override codes
//! (argon2), one-time setup links, and API tokens for scripts.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{AdminError, AdminStore, now_ms, random_token, token_hash};

/// What a user may do. Each role includes nothing of another: an admin is
/// given every right explicitly by [`Role::may`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Head teacher, governor: reads the log, the reports and the audit trail.
    Viewer,
    /// Uses a personal override code to unlock a site for a lesson.
    Teacher,
    /// The designated safeguarding lead: reads everything a viewer reads,
    /// unlocks like a teacher, and alone with the admin may release a
    /// category that alerts (self-harm, extremism, pornography...).
    Dsl,
    /// The technician: lists, allow/deny, users, and all the above.
    Admin,
}

/// The rights the pages check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    ReadLog,
    CheckName,
    UseOverride,
    /// Unlock a name in a category that alerts the safeguarding lead.
    ReleaseAlerting,
    ManageRules,
    ManageUsers,
    /// See which device and person tried a [`SENSITIVE_CATEGORIES`] site,
    /// on the school's page and the trust's dashboard alike.
    SeeSensitiveNames,
}

/// Categories whose attempts name a child only to a role with
/// [`Right::SeeSensitiveNames`]; others see counts.
pub const SENSITIVE_CATEGORIES: &[&str] = &["self-harm", "extremism"];

impl Role {
    pub fn may(self, right: Right) -> bool {
        match self {
            Role::Admin => true,
            Role::Viewer => matches!(right, Right::ReadLog | Right::CheckName),
            Role::Teacher => matches!(right, Right::UseOverride | Right::CheckName),
            Role::Dsl => matches!(
                right,
                Right::ReadLog
                    | Right::CheckName
                    | Right::UseOverride
                    | Right::ReleaseAlerting
                    | Right::SeeSensitiveNames
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Teacher => "teacher",
            Role::Dsl => "dsl",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<Role, AdminError> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "teacher" => Ok(Role::Teacher),
            "dsl" => Ok(Role::Dsl),
            "admin" => Ok(Role::Admin),
            other => Err(AdminError::Invalid(format!(
                "'{other}' is not a role: use viewer, teacher, dsl or admin"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub has_code: bool,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub label: String,
    pub role: Role,
    pub created_at: i64,
    pub created_by: String,
}

/// Shortest password accepted (NCSC: length over complexity rules).
pub const MIN_PASSWORD_LEN: usize = 10;
/// Shortest override code accepted; codes are typed on a classroom screen.
pub const MIN_CODE_LEN: usize = 6;
/// Why no setup link is made once an administrator exists, and the way in.
pub const ADMIN_EXISTS: &str = "an administrator already exists, so no setup link is made: sign in, or set a password on the appliance's console with `lollipop passwd NAME`";

pub const DAMAGED_STORE_SET_ASIDE: &str = "the page's records were damaged and set aside, so no setup link is made: set an administrator's password on the appliance's console with `lollipop passwd NAME --role admin`";

/// How long a setup link works.
pub const SETUP_LINK_MS: i64 = 24 * 3600 * 1000;

/// A user name: letters, digits, `.`, `-`, `_`, 1–64 characters.
pub fn check_user_name(name: &str) -> Result<(), AdminError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(
            "a user name is 1 to 64 letters, digits, '.', '-', '_' or '@'".into(),
        ))
    }
}

pub fn hash_secret(secret: &str) -> Result<String, AdminError> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| AdminError::Hash(error.to_string()))
}

fn verify_secret(secret: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok()
    })
}

fn check_password(password: &str) -> Result<(), AdminError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AdminError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_LEN} characters (three random words work well)"
        )));
    }
    if password.len() > 1024 {
        return Err(AdminError::Invalid(
            "a password is at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

impl AdminStore {
    pub fn users(&self) -> Result<Vec<User>, AdminError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT name, role, code_hash IS NOT NULL, created_at, created_by FROM users ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                let role: String = r.get(1)?;
                Ok(User {
                    name: r.get(0)?,
                    role: Role::parse(&role).unwrap_or(Role::Viewer),
                    has_code: r.get(2)?,
                    created_at: r.get(3)?,
                    created_by: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn user(&self, name: &str) -> Result<Option<User>, AdminError> {
        Ok(self.users()?.into_iter().find(|u| u.name == name))
    }

    pub fn has_admin(&self) -> Result<bool, AdminError> {
        self.with(|conn| {
            conn.query_row("SELECT count(*) FROM users WHERE role = 'admin'", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n > 0)
    }

    /// Adds a user, or replaces the role and password of an existing one.
    /// Slow on purpose (argon2): call off the async runtime.
    pub fn set_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
        by: &str,
    ) -> Result<(), AdminError> {
        check_user_name(name)?;
        check_password(password)?;
        let hash = hash_secret(password)?;
        self.with(|conn| {
            conn.execute(
                "INSERT INTO users (name, role, password_hash, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET role = ?2, password_hash = ?3",
                params![name, role.as_str(), hash, now_ms(), by],
            )
        })?;
        Ok(())
    }

    /// Changes an existing user's role, keeping their password; false if
    /// there is no such user.
    pub fn set_role(&self, name: &str, role: Role) -> Result<bool, AdminError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE users SET role = ?2 WHERE name = ?1",
                params![name, role.as_str()],
            )
        })
        .map(|n| n > 0)
    }

    pub fn remove_user(&self, name: &str) -> Result<bool, AdminError> {
        self.with(|conn| conn.execute("DELETE FROM users WHERE name = ?1", [name]))
            .map(|n| n > 0)
    }

    /// Sets the user's personal override code (None removes it).
    pub fn set_code(&self, name: &str, code: Option<&str>) -> Result<(), AdminError> {
        let hash = match code {
            Some(code) => {
                let code = code.trim();
                if code.chars().count() < MIN_CODE_LEN || code.len() > 64 {
                    return Err(AdminError::Invalid(format!(
                        "an override code is {MIN_CODE_LEN} to 64 characters"
                    )));
                }
                Some(hash_secret(code)?)
            }
            None => None,
        };
        let changed = self.with(|conn| {
            conn.execute(
                "UPDATE users SET code_hash = ?2 WHERE name = ?1",
                params![name, hash],
            )
        })?;
        if changed == 0 {
            return Err(AdminError::Invalid(format!("no user named '{name}'")));
        }
        Ok(())
    }

    /// The user if `password` is theirs. Slow on purpose (argon2).
    pub fn check_login(&self, name: &str, password: &str) -> Result<Option<User>, AdminError> {
        let stored = self.secret_of(name, "password_hash")?;
        match stored {
            Some(hash) if verify_secret(password, &hash) => self.user(name),
            _ => Ok(None),
        }
    }

    /// The user if `code` is their override code and their role allows its use.
    pub fn check_code(&self, name: &str, code: &str) -> Result<Option<User>, AdminError> {
        let stored = self.secret_of(name, "code_hash")?;
        match stored {
            Some(hash) if verify_secret(code.trim(), &hash) => Ok(self
                .user(name)?
                .filter(|user| user.role.may(Right::UseOverride))),
            _ => Ok(None),
        }
    }

    fn secret_of(&self, name: &str, column: &str) -> Result<Option<String>, AdminError> {
        let sql = format!("SELECT {column} FROM users WHERE name = ?1");
        self.with(|conn| {
            conn.query_row(&sql, [name], |r| r.get::<_, Option<String>>(0))
                .optional()
                .map(Option::flatten)
        })
    }

    /// A new one-time setup token, valid for a day; only its hash is kept.
    /// Refused once an administrator exists: a spare link must never be a
    /// way to an admin account.
    pub fn new_setup_token(&self) -> Result<String, AdminError> {
        if self.has_admin()? {
            return Err(AdminError::Invalid(ADMIN_EXISTS.into()));
        }
        // A store set aside as damaged may have held admins: a link now
        // would hand the appliance to whoever reads it first.
        if !self.damaged_copies().is_empty() {
            return Err(AdminError::Invalid(DAMAGED_STORE_SET_ASIDE.into()));
        }
        let token = random_token();
        let now = now_ms();
        self.with(|conn| {
            conn.execute("DELETE FROM setup_tokens WHERE expires_at < ?1", [now])?;
            conn.execute(
                "INSERT INTO setup_tokens (token_hash, expires_at) VALUES (?1, ?2)",
                params![token_hash(&token), now + SETUP_LINK_MS],
            )
        })?;
        Ok(token)
    }

    /// Whether `token` is a setup token that has not expired or been used,
    /// while no administrator exists.
    pub fn setup_token_valid(&self, token: &str) -> Result<bool, AdminError> {
        if !self.damaged_copies().is_empty() {
            return Ok(false);
        }
        self.with(|conn| {
            conn.query_row(
                "SELECT count(*) FROM setup_tokens WHERE token_hash = ?1 AND expires_at >= ?2
                   AND NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin')",
                params![token_hash(token), now_ms()],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n > 0)
    }

    /// Uses up a setup token: creates the first admin with it, and ends
    /// every other setup link. In one write transaction, so two links
    /// redeemed at once (from this process or another) make one admin and
    /// one refusal, and an existing user is never overwritten.
    pub fn redeem_setup_token(
        &self,
        token: &str,
        name: &str,
        password: &str,
    ) -> Result<(), AdminError> {
        let refused = || {
            AdminError::Invalid(
                "this setup link has expired or was already used: run `lollipop setup-link` for a new one"
                    .into(),
            )
        };
        if !self.setup_token_valid(token)? {
            return Err(refused());
        }
        check_user_name(name)?;
        check_password(password)?;
        // Slow on purpose (argon2): outside the transaction.
        let hash = hash_secret(password)?;
        let created = self.with(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let usable: i64 = tx.query_row(
                "SELECT count(*) FROM setup_tokens WHERE token_hash = ?1 AND expires_at >= ?2
                   AND NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin')",
                params![token_hash(token), now_ms()],
                |r| r.get(0),
            )?;
            if usable == 0 {
                return Ok(false);
            }
            let inserted = tx.execute(
                "INSERT INTO users (name, role, password_hash, created_at, created_by)
                 VALUES (?1, 'admin', ?2, ?3, 'setup link')
                 ON CONFLICT(name) DO NOTHING",
                params![name, hash, now_ms()],
            )?;
            if inserted == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM setup_tokens", [])?;
            tx.commit()?;
            Ok(true)
        })?;
        if created { Ok(()) } else { Err(refused()) }
    }

    /// A new API token for scripts; shown once, only its hash is kept.
    pub fn new_api_token(&self, label: &str, role: Role, by: &str) -> Result<String, AdminError> {
        let label = label.trim();
        if label.is_empty() || label.len() > 100 {
            return Err(AdminError::Invalid(
                "give the token a label of 1 to 100 characters (what uses it)".into(),
            ));
        }
        let token = format!("lp_{}", random_token());
        self.with(|conn| {
            conn.execute(
                "INSERT INTO api_tokens (label, token_hash, role, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![label, token_hash(&token), role.as_str(), now_ms(), by],
            )
        })?;
        Ok(token)
    }

    /// The label and role of an API token, if it is one.
    pub fn check_api_token(&self, token: &str) -> Result<Option<(String, Role)>, AdminError> {
        let row = self.with(|conn| {
            conn.query_row(
                "SELECT label, role FROM api_tokens WHERE token_hash = ?1",
                [token_hash(token)],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
        })?;
        Ok(row.map(|(label, role)| (label, Role::parse(&role).unwrap_or(Role::Viewer))))
    }

    /// Every API token (never the token itself).
    pub fn api_tokens(&self) -> Result<Vec<ApiToken>, AdminError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, label, role, created_at, created_by FROM api_tokens ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                let role: String = r.get(2)?;
                Ok(ApiToken {
                    id: r.get(0)?,
                    label: r.get(1)?,
                    role: Role::parse(&role).unwrap_or(Role::Viewer),
                    created_at: r.get(3)?,
                    created_by: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn revoke_api_token(&self, id: i64) -> Result<bool, AdminError> {
        self.with(|conn| conn.execute("DELETE FROM api_tokens WHERE id = ?1", [id]))
            .map(|n| n > 0)
    }
}
