//! Several mailgate instances behind HAProxy (`tests/support/cluster.rs`):
//! the real binary three times, one shared store, the private Dovecot and
//! the test identity provider. Each scenario is one file, bounded in time
//! and count.
//!
//! | module | what it proves |
//! |---|---|
//! | `guard_flood` | a wrong-password flood from one address locks it out on every instance; another address logs in (PostgreSQL and a shared state directory) |
//! | `db_restart` | database restart during traffic: warm logins keep working, a login that needs a refresh gets a temporary answer, then works once the database is back |
//! | `migrate` | `mailgate store migrate` file → PostgreSQL → file (dry run first), logins on every instance after each step |
//! | `lease_kill` | SIGKILL of the instance holding the refresh lease mid-refresh: the others finish, the stored refresh token is the newest; three rounds |
//! | `burst` | 500 simultaneous logins with an expired token all succeed with one refresh, on PostgreSQL and on a shared state directory |

mod burst;
mod db_restart;
mod guard_flood;
mod lease_kill;
mod migrate;

/// A runtime for one cluster test's clients.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime")
}
