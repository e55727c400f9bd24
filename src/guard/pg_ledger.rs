//! [`PgLedger`]: instances on one PostgreSQL store share the guard's
//! verdicts in the table `mailgate_guard_verdicts` (schema migration
//! "shared guard verdicts", `store::postgres::schema`): one row per verdict,
//! numbered by a sequence. Each instance inserts its own and reads the
//! others' past a cursor.
//!
//! A sequence number is taken before its row commits, so a row with a lower
//! number can appear after a higher one was read. The cursor therefore only
//! moves past rows older than [`SETTLE`] (any insert has committed or
//! failed by then); newer rows are read again at the next pull and skipped
//! if already applied (the ids seen since the cursor are kept).
//!
//! Bounded: rows older than [`KEEP`] are deleted (by any instance, at most
//! every [`PRUNE_EVERY`]), and so are all but the newest [`MAX_ROWS`]; one
//! pull reads at most [`MAX_PULL`] rows. A new instance starts at the end.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::ledger::{GuardLedger, LedgerError, Shared, Verdict};
use super::persist::{key_of, target_of};
use crate::base::BoxFuture;
use crate::store::postgres::Database;

/// Age past which no insert can still be uncommitted.
pub const SETTLE: Duration = Duration::from_secs(5);
/// How long a verdict stays in the table; instances read it within seconds.
pub const KEEP: Duration = Duration::from_secs(15 * 60);
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
pub const MAX_ROWS: i64 = 1_000_000;
pub const MAX_PULL: i64 = 10_000;

pub struct PgLedger {
    db: Database,
    instance: String,
    cursor: tokio::sync::Mutex<Cursor>,
}

#[derive(Default)]
struct Cursor {
    /// Every row up to this id has been read (or was there before start).
    floor: Option<i64>,
    /// Ids above `floor` already applied.
    seen: HashSet<i64>,
    pruned: Option<Instant>,
}

fn backend(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Backend(e.to_string())
}

impl PgLedger {
    pub fn new(db: Database) -> Result<PgLedger, LedgerError> {
        let id = crate::base::random_bytes::<8>().map_err(backend)?;
        Ok(PgLedger {
            db,
            instance: crate::base::hex(&id),
            cursor: tokio::sync::Mutex::new(Cursor::default()),
        })
    }

    async fn insert(&self, verdicts: Vec<Shared>) -> Result<(), LedgerError> {
        if verdicts.is_empty() {
            return Ok(());
        }
        let client = self.db.client().await.map_err(backend)?;
        let mut sources = Vec::with_capacity(verdicts.len());
        let mut targets = Vec::with_capacity(verdicts.len());
        let mut kinds = Vec::with_capacity(verdicts.len());
        let mut ats = Vec::with_capacity(verdicts.len());
        for v in &verdicts {
            sources.push(v.source.to_string());
            targets.push(v.target.as_ref().map(key_of));
            kinds.push(match v.verdict {
                Verdict::Failed => 0i16,
                Verdict::Succeeded => 1i16,
            });
            ats.push(i64::try_from(v.at).unwrap_or(i64::MAX));
        }
        client
            .execute(
                "INSERT INTO mailgate_guard_verdicts (instance, source, target, verdict, at)
                 SELECT $1, s, t, v, a FROM UNNEST($2::text[], $3::text[], $4::int2[], $5::int8[])
                   AS u(s, t, v, a)",
                &[&self.instance, &sources, &targets, &kinds, &ats],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn read(&self) -> Result<Vec<Shared>, LedgerError> {
        let client = self.db.client().await.map_err(backend)?;
        let mut cursor = self.cursor.lock().await;
        let floor = match cursor.floor {
            Some(floor) => floor,
            None => {
                let row = client
                    .query_one(
                        "SELECT coalesce(max(id), 0) FROM mailgate_guard_verdicts",
                        &[],
                    )
                    .await
                    .map_err(backend)?;
                let start: i64 = row.get(0);
                cursor.floor = Some(start);
                return Ok(Vec::new());
            }
        };
        let settle = SETTLE.as_secs_f64();
        let rows = client
            .query(
                "SELECT id, source, target, verdict, at,
                        inserted < now() - make_interval(secs => $3) AS settled
                   FROM mailgate_guard_verdicts
                  WHERE id > $1 AND instance <> $2
                  ORDER BY id LIMIT $4",
                &[&floor, &self.instance, &settle, &MAX_PULL],
            )
            .await
            .map_err(backend)?;
        let mut out = Vec::new();
        let mut new_floor = floor;
        let mut contiguous = true;
        for row in &rows {
            let id: i64 = row.get(0);
            let settled: bool = row.get(5);
            if contiguous && settled {
                new_floor = id;
            } else {
                contiguous = false;
            }
            if !cursor.seen.insert(id) {
                continue;
            }
            if let Some(v) = verdict_of(row) {
                out.push(v);
            }
        }
        cursor.floor = Some(new_floor);
        cursor.seen.retain(|id| *id > new_floor);
        let due = cursor.pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
        if due {
            cursor.pruned = Some(Instant::now());
            prune(&client).await?;
        }
        Ok(out)
    }
}

fn verdict_of(row: &tokio_postgres::Row) -> Option<Shared> {
    let source: String = row.get(1);
    let target: Option<String> = row.get(2);
    let kind: i16 = row.get(3);
    let at: i64 = row.get(4);
    let target = match target {
        Some(key) => Some(target_of(&key)?),
        None => None,
    };
    Some(Shared {
        source: source.parse::<IpAddr>().ok()?,
        target,
        verdict: if kind == 0 {
            Verdict::Failed
        } else {
            Verdict::Succeeded
        },
        at: u64::try_from(at).ok()?,
    })
}

async fn prune(client: &tokio_postgres::Client) -> Result<(), LedgerError> {
    client
        .execute(
            "DELETE FROM mailgate_guard_verdicts
              WHERE inserted < now() - make_interval(secs => $1)
                 OR id <= (SELECT max(id) FROM mailgate_guard_verdicts) - $2",
            &[&KEEP.as_secs_f64(), &MAX_ROWS],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

impl GuardLedger for PgLedger {
    fn publish(&self, verdicts: Vec<Shared>) -> BoxFuture<'_, Result<(), LedgerError>> {
        Box::pin(self.insert(verdicts))
    }

    fn pull(&self) -> BoxFuture<'_, Result<Vec<Shared>, LedgerError>> {
        Box::pin(self.read())
    }
}
