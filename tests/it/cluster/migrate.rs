//! `mailgate store migrate` round trip under three instances behind
//! HAProxy: on the file store, then (after a dry run and the copy) on
//! PostgreSQL with the file records gone, then back on the file store.
//! After each step every instance logs Alice in with her local password.

use crate::support::cluster::{Cluster, Options, PASSWORD, StoreKind};
use crate::support::servers::PgCluster;

/// One login per instance (HAProxy balances round-robin).
const LOGINS: usize = 3;

/// `mailgate store migrate ARGS` with `config`; its output (it must succeed).
fn migrate(cluster: &Cluster, args: &[&str]) -> String {
    let mut all = vec!["store", "migrate"];
    all.extend_from_slice(args);
    let out = crate::support::mailgate::command(&all, &cluster.configs[0])
        .output()
        .expect("run mailgate store migrate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

fn logins_work(cluster: &Cluster, step: &str) {
    let rt = super::runtime();
    rt.block_on(async {
        for _ in 0..LOGINS {
            let answer = cluster.login("127.0.0.1", PASSWORD).await;
            assert!(
                answer.starts_with("a OK"),
                "{step}: {answer}\n{}",
                cluster.logs()
            );
        }
    });
}

#[test]
fn file_to_postgres_and_back_with_logins_through_the_cluster_after_each_step() {
    let pg = PgCluster::shared().expect("private PostgreSQL");
    let db = pg.database().expect("database");
    let url = pg.url(&db);
    let mut cluster = Cluster::start(Options {
        store: StoreKind::File,
        ..Options::default()
    });
    logins_work(&cluster, "file store");

    cluster.stop_and_switch(Some(&url));
    let dry = migrate(
        &cluster,
        &["--from", "file", "--to", "postgres", "--dry-run"],
    );
    assert!(dry.contains("would copy 1 of 1 records"), "{dry}");
    let rows = pg.sql(&db, "SELECT count(*) FROM mailgate_accounts");
    // The dry run may have created the schema, never a row.
    assert!(rows.is_err() || rows.as_deref() == Ok("0"), "{rows:?}");
    let copied = migrate(&cluster, &["--from", "file", "--to", "postgres"]);
    assert!(copied.contains("copied 1 of 1 records"), "{copied}");
    // The file record goes: the instances now read the database alone.
    let accounts = cluster.dir.join("state").join("accounts");
    for entry in std::fs::read_dir(&accounts).expect("accounts dir") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove record");
    }
    cluster.start_again();
    logins_work(&cluster, "postgres store");

    cluster.stop_and_switch(Some(&url));
    let home = migrate(&cluster, &["--from", "postgres", "--to", "file"]);
    assert!(home.contains("copied 1 of 1 records"), "{home}");
    cluster.stop_and_switch(None);
    cluster.start_again();
    logins_work(&cluster, "file store again");
}
