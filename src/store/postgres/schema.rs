//! The database schema, created and upgraded by mailgate itself.
//!
//! Each migration runs in its own transaction together with the row that
//! records it in `mailgate_schema_version`, so a migration is applied
//! entirely or not at all, and applying is idempotent. Instances starting
//! together are serialised by an advisory lock: one migrates, the others
//! find the work done. Migrations only ever add (tables, columns with
//! defaults), so instances of the previous release keep working during a
//! rolling upgrade; a schema newer than this release knows is accepted.

use std::time::Duration;

use tokio_postgres::Client;

use super::database::{advisory_lock, advisory_unlock, db_error};
use crate::store::StoreError;

/// One step of the schema.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first. Version numbers are global: a later
/// table (the shared guard state, say) appends its own migration here.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "sealed account records",
        sql: "CREATE TABLE mailgate_accounts (
                account text PRIMARY KEY,
                rev bigint NOT NULL,
                body bytea NOT NULL
              )",
    },
    Migration {
        version: 2,
        name: "change times; the machine key's fingerprint",
        sql: "ALTER TABLE mailgate_accounts
                ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
              CREATE TABLE mailgate_machine_key (
                id int PRIMARY KEY CHECK (id = 1),
                fingerprint text NOT NULL
              )",
    },
    Migration {
        version: 3,
        name: "shared login guard verdicts",
        sql: "CREATE TABLE mailgate_guard_verdicts (
                id bigserial PRIMARY KEY,
                instance text NOT NULL,
                source text NOT NULL,
                target text,
                verdict smallint NOT NULL,
                at bigint NOT NULL,
                inserted timestamptz NOT NULL DEFAULT now()
              );
              CREATE INDEX mailgate_guard_verdicts_inserted
                ON mailgate_guard_verdicts (inserted)",
    },
];

/// The schema version this release writes.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Advisory lock key for migrations ("mgschema").
const MIGRATE_KEY: i64 = 0x6d67_7363_6865_6d61;

/// Brings the schema up to `upto` (normally [`latest`]); returns the
/// version the database is at afterwards.
pub async fn migrate(client: &mut Client, upto: i32, wait: Duration) -> Result<i32, StoreError> {
    advisory_lock(client, MIGRATE_KEY, wait).await?;
    let result = apply(client, upto).await;
    let unlocked = advisory_unlock(client, MIGRATE_KEY).await;
    let version = result?;
    unlocked?;
    Ok(version)
}

async fn apply(client: &mut Client, upto: i32) -> Result<i32, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS mailgate_schema_version (
               version int PRIMARY KEY,
               name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(db_error)?;
    let start = current_version(client).await?;
    let mut current = start;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > start && m.version <= upto)
    {
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(m.sql).await.map_err(db_error)?;
        tx.execute(
            "INSERT INTO mailgate_schema_version (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "token database schema migrated"
        );
        current = m.version;
    }
    Ok(current)
}

/// The newest applied migration; 0 on an empty database.
pub async fn current_version(client: &Client) -> Result<i32, StoreError> {
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM mailgate_schema_version",
            &[],
        )
        .await
        .map_err(db_error)?;
    row.try_get(0).map_err(db_error)
}
