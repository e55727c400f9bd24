//! The PostgreSQL token store against a real, private PostgreSQL
//! (`support/servers/postgres.rs`): the same backend contract the file
//! store keeps, compare-and-swap, leases that die with their connection,
//! schema upgrades from the first version, TLS, `store migrate` and
//! `/readyz`.
//!
//! Store calls are synchronous and wait on the database's runtime, so each
//! test owns a runtime for the database and calls the store from its own
//! thread, as the gateway's blocking pool does.

mod contract;
mod guard;
mod lease;
mod migrate;
mod refresh;
mod schema;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mailgate::base::AccountName;
use mailgate::config::{PgTls, Postgres};
use mailgate::oauth::TokenResponse;
use mailgate::secret::Secret;
use mailgate::store::crypto::KdfParams;
use mailgate::store::{Database, Enrolment, PgStore, Store};

use crate::support::scratch::Scratch;
use crate::support::servers::PgCluster;

/// A cheap Argon2id cost: these tests are about storage, not derivation.
pub const KDF: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};

pub fn settings(url: String, tls: PgTls, ca_file: Option<PathBuf>) -> Postgres {
    Postgres {
        url,
        password: None,
        tls,
        ca_file,
        timeout: Duration::from_secs(5),
        max_connections: 8,
    }
}

/// A runtime for the database, a fresh database on the shared cluster and
/// a [`PgStore`] on it.
pub struct Fixture {
    /// Runs the pool's connections; dropped last.
    _runtime: tokio::runtime::Runtime,
    pub scratch: Scratch,
    pub db_name: String,
    pub pg: Arc<PgStore>,
}

impl Fixture {
    pub fn new(tag: &str) -> Fixture {
        let cluster = PgCluster::shared().unwrap();
        let db_name = cluster.database().unwrap();
        Fixture::on(
            tag,
            settings(cluster.url(&db_name), PgTls::Disable, None),
            db_name,
        )
    }

    pub fn on(tag: &str, settings: Postgres, db_name: String) -> Fixture {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let scratch = Scratch::new(tag);
        std::fs::create_dir_all(scratch.state()).unwrap();
        let db = {
            let _in_runtime = rt.enter();
            Database::new(&settings).unwrap()
        };
        let pg = Arc::new(PgStore::new(db, &scratch.state()).unwrap());
        Fixture {
            _runtime: rt,
            scratch,
            db_name,
            pg,
        }
    }

    pub fn store(&self) -> Store {
        Store::new(self.pg.clone()).with_kdf(KDF)
    }
}

pub fn name(account: &str) -> AccountName {
    AccountName::parse(account).unwrap()
}

pub fn answer(access: &str, refresh: Option<&str>) -> TokenResponse {
    TokenResponse {
        access_token: Secret::from(access),
        refresh_token: refresh.map(Secret::from),
        expires_in: Duration::from_secs(3600),
        expires_in_assumed: false,
    }
}

pub fn enrol(store: &Store, account: &str, password: &str, refresh: &str) {
    store
        .enrol(Enrolment {
            account: &name(account),
            provider: "ms",
            sasl_user: account,
            password: &Secret::from(password),
            tokens: &answer("AT-enrol", Some(refresh)),
        })
        .unwrap();
}

pub fn now() -> SystemTime {
    SystemTime::now()
}
