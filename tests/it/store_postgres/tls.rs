//! TLS to the database through rustls: `require` encrypts to a server with
//! a self-signed certificate, `verify-full` checks the certificate against
//! `ca_file`, and a check that fails is an error, never a silent fallback.

use mailgate::config::PgTls;
use mailgate::store::Database;

use super::settings;
use crate::support::servers::PgCluster;

#[test]
fn require_and_verify_full_reach_a_tls_server() {
    let cluster = PgCluster::start(true).unwrap();
    let db = cluster.database().unwrap();
    let ca = cluster.ca_path().unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ping = |tls, ca_file| {
        let s = settings(cluster.url(&db), tls, ca_file);
        rt.block_on(async move { Database::new(&s).unwrap().ping().await })
    };
    ping(PgTls::Require, None).unwrap();
    ping(PgTls::VerifyFull, Some(ca.clone())).unwrap();
    let err = ping(PgTls::VerifyFull, None).unwrap_err();
    assert!(err.to_string().contains("unavailable"), "{err}");
    // Every connection above was encrypted.
    let plain = cluster
        .sql(&db, "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'mailgate' AND NOT s.ssl")
        .unwrap();
    assert_eq!(plain, "0");
}
