//! [`Database`]: one handle on the shared PostgreSQL database: a bounded
//! connection pool, the schema brought up to date before first use, bounded
//! advisory locks, and the bridge from the synchronous store seam to the
//! async client.
//!
//! The bridge: [`TokenStore`](crate::store::TokenStore) is synchronous and
//! callers run the slow parts on a blocking thread (Argon2id is slow by
//! design), so [`Database::run`] spawns the query on the runtime the handle
//! was made on and waits for its answer on the calling thread, never longer
//! than the configured timeout. The cheap calls the file store answers with
//! one `stat` (a record's stamp) are made from async tasks too: on a
//! multi-threaded runtime's worker the wait goes through
//! `block_in_place`, which hands the worker's queue to another thread
//! first. On a current-thread runtime's own thread the query cannot run
//! while it waits, so the wait ends at the timeout with
//! [`StoreError::Unavailable`]: an error, never a deadlock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};

use super::schema;
use super::tls::RustlsConnect;
use crate::config::{PasswordSource, PgTls, Postgres};
use crate::store::StoreError;

/// Longest database password read from a file.
const MAX_PASSWORD_FILE: u64 = 4096;
/// Pause between two tries for a busy advisory lock.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// A cheap, cloneable handle; clones share the pool.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    handle: Handle,
    timeout: Duration,
    label: String,
    migrated: OnceCell<i32>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({})", self.inner.label)
    }
}

impl Database {
    /// Prepares the pool without connecting (the first query connects and
    /// migrates), so a gateway starts while its database is down and says
    /// so on `/readyz`. Must be called inside a tokio runtime: the handle
    /// keeps using it.
    pub fn new(settings: &Postgres) -> Result<Database, StoreError> {
        let handle = Handle::try_current().map_err(|_| StoreError::Unavailable {
            reason: "the database store needs a tokio runtime".to_owned(),
        })?;
        let mut pg: tokio_postgres::Config =
            settings.url.parse().map_err(|e| StoreError::Unavailable {
                reason: format!("database url: {e}"),
            })?;
        if let Some(source) = &settings.password {
            pg.password(read_password(source)?);
        }
        let ms = settings.timeout.as_millis();
        pg.connect_timeout(settings.timeout)
            .options(format!("-c statement_timeout={ms} -c lock_timeout={ms}"))
            .application_name("mailgate")
            .ssl_mode(match settings.tls {
                PgTls::Disable => tokio_postgres::config::SslMode::Disable,
                PgTls::Require | PgTls::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        let label = label_of(&pg);
        let recycle = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match RustlsConnect::for_mode(settings.tls, settings.ca_file.as_deref())? {
            Some(tls) => Manager::from_config(pg, tls, recycle),
            None => Manager::from_config(pg, NoTls, recycle),
        };
        let pool = Pool::builder(manager)
            .max_size(settings.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.timeout))
            .create_timeout(Some(settings.timeout))
            .recycle_timeout(Some(settings.timeout))
            .build()
            .map_err(|e| StoreError::Unavailable {
                reason: format!("database pool: {e}"),
            })?;
        Ok(Database {
            inner: Arc::new(Inner {
                pool,
                handle,
                timeout: settings.timeout,
                label,
                migrated: OnceCell::new(),
            }),
        })
    }

    /// `user@host:port/db`, for messages (never the password).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The bound on every wait.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The runtime the pool's connections live on.
    pub fn handle(&self) -> &Handle {
        &self.inner.handle
    }

    /// A pooled connection on an up-to-date schema.
    pub async fn client(&self) -> Result<Object, StoreError> {
        let mut client = self.connection().await?;
        if self.inner.migrated.get().is_none() {
            let wait = self.inner.timeout;
            self.inner
                .migrated
                .get_or_try_init(|| schema::migrate(&mut client, schema::latest(), wait))
                .await?;
        }
        Ok(client)
    }

    /// A pooled connection, schema untouched (migration tests, `migrate`).
    pub async fn connection(&self) -> Result<Object, StoreError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: format!("{}: {e}", self.inner.label),
            })
    }

    /// Runs `work` on the database's runtime and waits for it from this
    /// (blocking) thread, at most the timeout (module docs).
    pub fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let timeout = self.inner.timeout;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.handle.spawn(async move {
            let done = tokio::time::timeout(timeout, work)
                .await
                .unwrap_or_else(|_| Err(timed_out()));
            let _ = tx.send(done);
        });
        // The task's own timeout answers first; this one covers a runtime
        // that cannot run it (shut down, or this very thread).
        let wait = move || {
            rx.recv_timeout(timeout + Duration::from_secs(1))
                .unwrap_or_else(|_| Err(timed_out()))
        };
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            // On a worker the task just spawned sits in this worker's own
            // queue: hand the worker's other work to another thread while
            // waiting. (Off a worker this simply runs `wait`.)
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            _ => wait(),
        }
    }

    /// One round trip: the database answers and the schema is current.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(db_error)?;
        Ok(())
    }
}

/// Takes the session-level advisory lock `key` on `client`, trying until
/// `wait` has passed (then [`StoreError::Unavailable`]).
pub async fn advisory_lock(client: &Client, key: i64, wait: Duration) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(db_error)?;
        if row.try_get::<_, bool>(0).map_err(db_error)? {
            return Ok(());
        }
        if tokio::time::Instant::now() + LOCK_RETRY > deadline {
            return Err(StoreError::Unavailable {
                reason: format!("a database lock was held longer than {wait:?}"),
            });
        }
        tokio::time::sleep(LOCK_RETRY).await;
    }
}

pub async fn advisory_unlock(client: &Client, key: i64) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .map_err(db_error)?;
    Ok(())
}

/// A client error as the store reports it. Database errors carry no
/// parameters, so no sealed record or password reaches a log through them.
pub fn db_error(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable {
        reason: e.to_string(),
    }
}

fn timed_out() -> StoreError {
    StoreError::Unavailable {
        reason: "the database did not answer in time".to_owned(),
    }
}

fn read_password(source: &PasswordSource) -> Result<String, StoreError> {
    match source {
        PasswordSource::File(path) => {
            let bytes = crate::fsutil::read_bounded(path, MAX_PASSWORD_FILE)
                .map_err(super::super::layout::io("read", path))?
                .ok_or_else(|| StoreError::Unavailable {
                    reason: format!("database password file {} is missing", path.display()),
                })?;
            Ok(String::from_utf8_lossy(&bytes)
                .trim_end_matches(['\r', '\n'])
                .to_owned())
        }
        PasswordSource::Env(var) => std::env::var(var).map_err(|_| StoreError::Unavailable {
            reason: format!("environment variable {var} (the database password) is not set"),
        }),
    }
}

fn label_of(pg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "?".to_owned(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let user = pg.get_user().unwrap_or("?");
    let db = pg.get_dbname().unwrap_or(user);
    format!("postgres {user}@{host}:{port}/{db}")
}
