//! The login guard's verdicts shared through the database
//! (`guard::pg_ledger`): what one instance publishes another reads, once,
//! and a new instance starts at the end.

use std::net::{IpAddr, Ipv4Addr};

use mailgate::config::PgTls;
use mailgate::guard::Target;
use mailgate::guard::ledger::{GuardLedger, Shared, Verdict};
use mailgate::guard::pg_ledger::PgLedger;
use mailgate::store::Database;

use super::{name, settings};
use crate::support::servers::PgCluster;

#[test]
fn instances_on_one_database_read_each_others_verdicts_once() {
    let cluster = PgCluster::shared().unwrap();
    let db_name = cluster.database().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let open = || {
            let db = Database::new(&settings(cluster.url(&db_name), PgTls::Disable, None)).unwrap();
            PgLedger::new(db).unwrap()
        };
        let (a, b) = (open(), open());
        assert!(b.pull().await.unwrap().is_empty(), "starts at the end");
        let v = Shared {
            source: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            target: Some(Target::Account(name("alice@example.test"))),
            verdict: Verdict::Failed,
            at: 1_700_000_000,
        };
        a.publish(vec![v.clone(), v.clone()]).await.unwrap();
        assert!(a.pull().await.unwrap().is_empty(), "not its own");
        assert_eq!(b.pull().await.unwrap(), vec![v.clone(), v.clone()]);
        assert!(b.pull().await.unwrap().is_empty(), "each verdict once");
        let c = open();
        assert!(c.pull().await.unwrap().is_empty());
        a.publish(vec![v.clone()]).await.unwrap();
        assert_eq!(c.pull().await.unwrap(), vec![v.clone()]);
        assert_eq!(b.pull().await.unwrap(), vec![v]);
    });
}
