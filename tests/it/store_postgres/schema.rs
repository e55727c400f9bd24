//! Schema upgrades: a database left at the first schema version by an
//! earlier release is upgraded in place, its records intact, and starting
//! many instances at once migrates exactly once.

use mailgate::store::postgres::schema;
use mailgate::store::{Database, TokenStore};

use super::{Fixture, enrol, name, settings};
use crate::support::servers::PgCluster;

#[test]
fn upgrade_from_the_first_version_keeps_records() {
    let cluster = PgCluster::shared().unwrap();
    let db_name = cluster.database().unwrap();
    let s = settings(
        cluster.url(&db_name),
        mailgate::config::PgTls::Disable,
        None,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let at = rt.block_on(async {
        let db = Database::new(&s).unwrap();
        let mut c = db.connection().await.unwrap();
        schema::migrate(&mut c, 1, db.timeout()).await.unwrap()
    });
    assert_eq!(at, 1);
    // A record as the first release wrote it: copied from a current one.
    let donor = Fixture::new("schema-donor");
    enrol(&donor.store(), "v1@example.test", "pw", "RT-v1");
    let body = cluster
        .sql(
            &donor.db_name,
            "SELECT encode(body, 'hex') FROM mailgate_accounts",
        )
        .unwrap();
    cluster
        .sql(
            &db_name,
            &format!(
                "INSERT INTO mailgate_accounts (account, rev, body) \
                 VALUES ('v1@example.test', 7, decode('{body}', 'hex'))"
            ),
        )
        .unwrap();

    let f = Fixture::on("schema-up", s, db_name.clone());
    let rec = f.pg.load(&name("v1@example.test")).unwrap().unwrap();
    assert_eq!(rec.account, name("v1@example.test"));
    let versions = cluster
        .sql(
            &db_name,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM mailgate_schema_version",
        )
        .unwrap();
    assert_eq!(versions, "1,2,3");
    let unlocked = f
        .store()
        .unlock(
            &name("v1@example.test"),
            &mailgate::secret::Secret::from("pw"),
        )
        .unwrap();
    assert_eq!(unlocked.tokens.refresh_token.expose(), "RT-v1");
}

#[test]
fn concurrent_starters_migrate_once() {
    let cluster = PgCluster::shared().unwrap();
    let db_name = cluster.database().unwrap();
    let s = settings(
        cluster.url(&db_name),
        mailgate::config::PgTls::Disable,
        None,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let results = rt.block_on(async {
        let starters: Vec<_> = (0..6)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    let db = Database::new(&s).unwrap();
                    db.ping().await
                })
            })
            .collect();
        let mut out = Vec::new();
        for s in starters {
            out.push(s.await.unwrap());
        }
        out
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let applied = cluster
        .sql(&db_name, "SELECT count(*) FROM mailgate_schema_version")
        .unwrap();
    assert_eq!(applied, schema::MIGRATIONS.len().to_string());
}
