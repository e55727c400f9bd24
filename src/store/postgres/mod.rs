//! [`PgStore`]: sealed records in a PostgreSQL database shared by several
//! gateways (`docs/design.md`, "Shared token store").
//!
//! The database holds what the file store holds and nothing more: per
//! account, the record's bytes exactly as the file store serialises them
//! (sealed: ciphertext bound to the account), plus a version number `rev`.
//!
//! - A lease is a per-account advisory lock held on one pooled connection
//!   for the lease's life. PostgreSQL drops it with the connection, so a
//!   killed holder never wedges the account; acquiring it waits at most the
//!   configured timeout.
//! - A save is a compare-and-swap on `rev`: the lease remembers the version
//!   it saw, and a save that finds another is refused with
//!   [`StoreError::Conflict`] (a holder whose connection died and whose lock
//!   passed to another instance meanwhile). The refresh path then re-reads
//!   and uses the winner's tokens.
//! - The machine key stays a file on each host; the database keeps only
//!   its fingerprint, so an instance with a different key is refused with a
//!   clear error instead of failing to open every machine-wrapped record.

mod database;
pub mod schema;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use deadpool_postgres::Object;

use super::crypto::Key;
use super::layout::{Stamp, corrupt, parse_record};
use super::{FileStore, Lease, Record, StoreError, TokenStore};
use crate::base::{self, AccountName};

pub use database::{Database, advisory_lock, advisory_unlock, db_error};

/// The token store on a shared database.
#[derive(Debug, Clone)]
pub struct PgStore {
    db: Database,
    /// This host's state directory: its `machine.key` only.
    local: FileStore,
}

/// What a [`PgStore`] lease holds.
struct Held {
    db: Database,
    account: AccountName,
    key: i64,
    conn: Option<Object>,
    /// The `rev` the next save expects; `None`: no row yet.
    rev: Mutex<Option<i64>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let key = self.key;
        self.db.handle().spawn(async move {
            if advisory_unlock(&conn, key).await.is_err() {
                // Never hand a connection that may still hold the lock
                // back to the pool: closing it releases the lock.
                drop(Object::take(conn));
            }
        });
    }
}

impl PgStore {
    pub fn new(db: Database, state_dir: &Path) -> Result<PgStore, StoreError> {
        Ok(PgStore {
            db,
            local: FileStore::open(state_dir)?,
        })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn source(&self, account: &AccountName) -> PathBuf {
        PathBuf::from(format!("{} account {account}", self.db.label()))
    }

    fn row_to_record(&self, body: &[u8], account: &str) -> Result<Record, StoreError> {
        let name = AccountName::parse(account)?;
        let rec = parse_record(body, &self.source(&name))?;
        if rec.account != name {
            return Err(corrupt(
                &self.source(&name),
                "holds the record of another account",
            ));
        }
        Ok(rec)
    }

    fn rows(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let db = self.db.clone();
        self.db.run(async move {
            let c = db.client().await?;
            let rows = c
                .query("SELECT account, body FROM mailgate_accounts", &[])
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get(0).map_err(db_error)?,
                        r.try_get(1).map_err(db_error)?,
                    ))
                })
                .collect()
        })
    }
}

/// The advisory lock key of an account's lease: the first eight bytes of a
/// SHA-256 over a label and the folded name (a collision only serialises
/// two accounts).
fn lease_key(account: &AccountName) -> i64 {
    let input = format!("mailgate-lease\0{account}");
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_ref()[..8]);
    i64::from_be_bytes(first)
}

impl TokenStore for PgStore {
    fn load(&self, account: &AccountName) -> Result<Option<Record>, StoreError> {
        let (db, name) = (self.db.clone(), account.to_string());
        let body: Option<Vec<u8>> = self.db.run(async move {
            let c = db.client().await?;
            let row = c
                .query_opt(
                    "SELECT body FROM mailgate_accounts WHERE account = $1",
                    &[&name],
                )
                .await
                .map_err(db_error)?;
            row.map(|r| r.try_get(0).map_err(db_error)).transpose()
        })?;
        body.map(|b| self.row_to_record(&b, account.as_str()))
            .transpose()
    }

    fn stamp(&self, account: &AccountName) -> Result<Option<Stamp>, StoreError> {
        let (db, name) = (self.db.clone(), account.to_string());
        let rev: Option<i64> = self.db.run(async move {
            let c = db.client().await?;
            let row = c
                .query_opt(
                    "SELECT rev FROM mailgate_accounts WHERE account = $1",
                    &[&name],
                )
                .await
                .map_err(db_error)?;
            row.map(|r| r.try_get(0).map_err(db_error)).transpose()
        })?;
        Ok(rev.map(|r| Stamp::from_version(r.unsigned_abs())))
    }

    fn list(&self) -> Result<Vec<Record>, StoreError> {
        self.list_each()?.into_iter().collect()
    }

    fn list_each(&self) -> Result<Vec<Result<Record, StoreError>>, StoreError> {
        Ok(self
            .rows()?
            .iter()
            .map(|(account, body)| self.row_to_record(body, account))
            .collect())
    }

    fn lease(&self, account: &AccountName) -> Result<Lease, StoreError> {
        let (db, name, key) = (self.db.clone(), account.to_string(), lease_key(account));
        let (conn, rev) = self.db.run(async move {
            let conn = db.client().await?;
            advisory_lock(&conn, key, db.timeout()).await?;
            let row = conn
                .query_opt(
                    "SELECT rev FROM mailgate_accounts WHERE account = $1",
                    &[&name],
                )
                .await;
            match row.and_then(|r| r.map(|r| r.try_get::<_, i64>(0)).transpose()) {
                Ok(rev) => Ok((conn, rev)),
                Err(e) => {
                    let _ = advisory_unlock(&conn, key).await;
                    Err(db_error(e))
                }
            }
        })?;
        Ok(Lease::new(Held {
            db: self.db.clone(),
            account: account.clone(),
            key,
            conn: Some(conn),
            rev: Mutex::new(rev),
        }))
    }

    fn save(&self, lease: &Lease, rec: &Record) -> Result<(), StoreError> {
        let held = held(lease, &rec.account)?;
        let expected = *held.rev.lock().unwrap_or_else(|p| p.into_inner());
        let body = serde_json::to_vec_pretty(rec)
            .map_err(|e| corrupt(&self.source(&rec.account), &e.to_string()))?;
        let (db, name) = (self.db.clone(), rec.account.to_string());
        let saved: Option<i64> = self.db.run(async move {
            let c = db.client().await?;
            let row = match expected {
                Some(rev) => {
                    c.query_opt(
                        "UPDATE mailgate_accounts SET body = $2, rev = rev + 1, updated_at = now()
                         WHERE account = $1 AND rev = $3 RETURNING rev",
                        &[&name, &body, &rev],
                    )
                    .await
                }
                None => {
                    c.query_opt(
                        "INSERT INTO mailgate_accounts (account, body, rev) VALUES ($1, $2, 1)
                         ON CONFLICT (account) DO NOTHING RETURNING rev",
                        &[&name, &body],
                    )
                    .await
                }
            }
            .map_err(db_error)?;
            row.map(|r| r.try_get(0).map_err(db_error)).transpose()
        })?;
        let Some(rev) = saved else {
            return Err(StoreError::Conflict {
                account: rec.account.clone(),
            });
        };
        *held.rev.lock().unwrap_or_else(|p| p.into_inner()) = Some(rev);
        Ok(())
    }

    fn remove(&self, lease: &Lease, account: &AccountName) -> Result<bool, StoreError> {
        let held = held(lease, account)?;
        let expected = *held.rev.lock().unwrap_or_else(|p| p.into_inner());
        let (db, name) = (self.db.clone(), account.to_string());
        let (removed, exists) = self.db.run(async move {
            let c = db.client().await?;
            let removed = match expected {
                Some(rev) => c
                    .execute(
                        "DELETE FROM mailgate_accounts WHERE account = $1 AND rev = $2",
                        &[&name, &rev],
                    )
                    .await
                    .map_err(db_error)?,
                None => 0,
            };
            let exists = c
                .query_opt(
                    "SELECT 1 FROM mailgate_accounts WHERE account = $1",
                    &[&name],
                )
                .await
                .map_err(db_error)?
                .is_some();
            Ok((removed > 0, exists))
        })?;
        if exists {
            return Err(StoreError::Conflict {
                account: account.clone(),
            });
        }
        *held.rev.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(removed)
    }

    /// This host's key (`<state_dir>/machine.key`), checked against the
    /// fingerprint the first instance registered.
    fn machine_key(&self) -> Result<Key, StoreError> {
        let key = self.local.machine_key()?;
        let mine = fingerprint(&key);
        let db = self.db.clone();
        let offered = mine.clone();
        let registered: String = self.db.run(async move {
            let c = db.client().await?;
            c.execute(
                "INSERT INTO mailgate_machine_key (id, fingerprint) VALUES (1, $1)
                 ON CONFLICT (id) DO NOTHING",
                &[&offered],
            )
            .await
            .map_err(db_error)?;
            let row = c
                .query_one(
                    "SELECT fingerprint FROM mailgate_machine_key WHERE id = 1",
                    &[],
                )
                .await
                .map_err(db_error)?;
            row.try_get(0).map_err(db_error)
        })?;
        if registered != mine {
            return Err(StoreError::MachineKeyMismatch);
        }
        Ok(key)
    }

    fn location(&self, account: &AccountName) -> PathBuf {
        self.source(account)
    }

    fn shared(&self) -> bool {
        true
    }

    fn check(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        self.db.run(async move { db.ping().await })
    }
}

fn held<'a>(lease: &'a Lease, account: &AccountName) -> Result<&'a Held, StoreError> {
    match lease.held::<Held>() {
        Some(h) if h.account == *account => Ok(h),
        _ => Err(StoreError::Conflict {
            account: account.clone(),
        }),
    }
}

/// A fingerprint that identifies the machine key without revealing it:
/// SHA-256 over a label and the key.
fn fingerprint(key: &Key) -> String {
    let mut input = b"mailgate machine key fingerprint\0".to_vec();
    input.extend_from_slice(key.expose());
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    base::hex(hash.as_ref())
}
