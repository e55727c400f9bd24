//! Several instances (measure 7): login latency with a warm token and the
//! 500-login burst on an expired token through HAProxy (TCP, send-proxy-v2,
//! round-robin) and three more `mailgate serve` processes sharing a private
//! PostgreSQL database, next to the rig's one instance on the file store.
//! In the table, the "direct" column is the one instance, the "mailgate"
//! column the three behind HAProxy.
//!
//! The cluster serves Bob, enrolled into the database at the start of this
//! phase with a short-lived token, so its burst finds the token expired;
//! Alice on the one instance has the same path. The instances keep the
//! machine key in the rig's state directory (the same key on every host);
//! the database's per-account advisory lock holds one refresh across them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use crate::report::{self, Report, ms};
use crate::rig::{ALICE, BOB, LOCAL_PASSWORD, REFRESH_MARGIN_SECS, Rig};
use crate::servers::{Haproxy, PgCluster, SendProxy};
use crate::wire::Conn;

pub const INSTANCES: usize = 3;
pub const LATENCY_LOGINS: usize = 150;
pub const BURST: usize = 500;
const BURST_TIMEOUT: Duration = Duration::from_secs(90);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const BUFFER: usize = 8 * 1024;

/// Three more instances on one database, and HAProxy in front of them.
struct Cluster {
    children: Vec<Child>,
    haproxy: Haproxy,
    /// Stopped (and its files removed) after the instances, on drop.
    _pg: PgCluster,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The instances' configs, written before Bob is enrolled through the
/// first of them (into the database).
struct Prepared {
    pg: PgCluster,
    configs: Vec<PathBuf>,
    ports: Vec<u16>,
}

fn prepare(rig: &Rig) -> Prepared {
    let pg = PgCluster::start(false).expect("private PostgreSQL");
    let db = pg.database().expect("database");
    let url = pg.url(&db);
    let ports = crate::servers::free_ports(INSTANCES).expect("free ports");
    let dir = rig.servers.dir().to_owned();
    let configs = ports
        .iter()
        .enumerate()
        .map(|(i, port)| write_config(rig, &dir, &url, i, *port))
        .collect();
    Prepared { pg, configs, ports }
}

async fn start(rig: &Rig, prepared: Prepared) -> Cluster {
    let Prepared { pg, configs, ports } = prepared;
    let dir = rig.servers.dir().to_owned();
    let mut children = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        let log = std::fs::File::create(dir.join(format!("cluster-{i}.log"))).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_mailgate"))
            .args(["--log", "warn", "serve", "--config"])
            .arg(config)
            .env_remove("MAILGATE_STATE_DIR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn mailgate serve");
        children.push(child);
    }
    let backends: Vec<SocketAddr> = ports.iter().map(|p| ([127, 0, 0, 1], *p).into()).collect();
    let deadline = Instant::now() + START_TIMEOUT;
    for addr in &backends {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "instance on {addr} not listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let haproxy = tokio::task::block_in_place(|| Haproxy::start_many(&backends, SendProxy::V2))
        .expect("haproxy");
    Cluster {
        children,
        haproxy,
        _pg: pg,
    }
}

/// The rig's provider and machine key, the database `url`, one plain IMAP
/// listener that takes the PROXY header from 127.0.0.1.
fn write_config(rig: &Rig, dir: &Path, url: &str, i: usize, port: u16) -> PathBuf {
    let text = format!(
        r#"state_dir = "{state}"

[limits]
max_connections = 30000
max_connections_per_ip = 30000
share_guard = true

[store]
kind = "postgres"
url = "{url}"
tls = "disable"

[[providers]]
name = "bench"
kind = "microsoft"
authority = "{authority}"
tenant = "{tenant}"
client_id = "bench-client"
refresh_margin_secs = {REFRESH_MARGIN_SECS}

[[listeners]]
name = "imap-plain"
protocol = "imap"
bind = "127.0.0.1:{port}"
proxy_protocol_from = ["127.0.0.1"]
max_upstream_per_mailbox = 30000
upstream = {{ host = "127.0.0.1", port = {imaps}, tls = "implicit", server_name = "localhost", ca_file = "{ca}" }}
"#,
        state = dir.join("mailgate-state").display(),
        authority = rig.idp.authority(),
        tenant = rig.idp.tenant(),
        imaps = rig.servers.imaps_port(),
        ca = rig.servers.ca_pem_path().display(),
    );
    let path = dir.join(format!("cluster-{i}.toml"));
    std::fs::write(&path, text).expect("write cluster config");
    path
}

async fn login(addr: SocketAddr, who: &str, select: bool) -> std::io::Result<Duration> {
    let started = Instant::now();
    let mut conn = Conn::connect(addr, None, BUFFER).await?;
    conn.greeting().await?;
    conn.command(&format!("LOGIN {who} {LOCAL_PASSWORD}"))
        .await?;
    if select {
        conn.command("SELECT INBOX").await?;
    }
    conn.command("LOGOUT").await?;
    Ok(started.elapsed())
}

/// Warm-token latency, one instance and the cluster interleaved.
async fn latency(rig: &Rig, cluster: &Cluster, report: &mut Report) {
    let targets = [(rig.ports.imap_plain, ALICE), (cluster.haproxy.addr, BOB)];
    for (addr, who) in targets {
        login(addr, who, true).await.expect("warm-up login");
    }
    let mut samples: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for i in 0..LATENCY_LOGINS * 2 {
        let k = i % 2;
        let (addr, who) = targets[k];
        samples[k].push(ms(login(addr, who, true).await.expect("login")));
    }
    let p = |k: usize, q: f64| report::percentile(&samples[k], q);
    for q in [50.0, 95.0] {
        report.row(
            format!("login+SELECT+LOGOUT p{q:.0}, one instance (file) vs HAProxy + {INSTANCES} (PostgreSQL) (ms)"),
            format!("{:.2}", p(0, q)),
            format!("{:.2}", p(1, q)),
            format!("{:+.2} ms", p(1, q) - p(0, q)),
            "-",
            None,
        );
    }
    report.set(
        "cluster_latency",
        json!({"one_p50_ms": p(0, 50.0), "cluster_p50_ms": p(1, 50.0),
               "one_p95_ms": p(0, 95.0), "cluster_p95_ms": p(1, 95.0),
               "samples": LATENCY_LOGINS}),
    );
}

/// One burst of [`BURST`] logins of Bob at `addr`; (ok, wall, refreshes,
/// errors).
async fn burst(rig: &Rig, addr: SocketAddr) -> (usize, Duration, u64, Vec<String>) {
    let before = rig.idp.token_requests("refresh_token");
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..BURST {
        set.spawn(login(addr, BOB, false));
    }
    let (mut ok, mut errors) = (0, Vec::new());
    let deadline = tokio::time::Instant::now() + BURST_TIMEOUT;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        match joined {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    set.abort_all();
    errors.sort();
    errors.dedup();
    let refreshes = rig.idp.token_requests("refresh_token") - before;
    (ok, started.elapsed(), refreshes, errors)
}

pub async fn run(rig: &Rig, warm_lifetime: Duration, report: &mut Report) {
    // Bob's first token is inside the refresh margin once the cluster is up.
    rig.idp
        .set_access_lifetime(Duration::from_secs(REFRESH_MARGIN_SECS + 3));
    // The device flow signs in the IdP's default user (Alice, enrolled first).
    rig.idp.set_default_user(BOB);
    let prepared = tokio::task::block_in_place(|| {
        let prepared = prepare(rig);
        crate::rig::enrol(&prepared.configs[0], BOB);
        prepared
    });
    rig.idp.set_default_user(ALICE);
    let enrolled = Instant::now();
    rig.idp.set_access_lifetime(warm_lifetime);
    let cluster = start(rig, prepared).await;
    tokio::time::sleep_until((enrolled + Duration::from_millis(3500)).into()).await;
    let (ok, wall, refreshes, errors) = burst(rig, cluster.haproxy.addr).await;
    report.row(
        format!("burst of {BURST} logins on an expired token, HAProxy + {INSTANCES} on PostgreSQL"),
        "-",
        format!("{ok}/{BURST} ok in {:.0} ms", ms(wall)),
        format!("{refreshes} refresh(es)"),
        "all ok, 1 refresh",
        Some(ok == BURST && refreshes == 1),
    );
    report.set(
        "cluster_burst",
        json!({"logins": BURST, "succeeded": ok, "wall_ms": ms(wall),
               "refreshes_at_idp": refreshes, "errors": errors.iter().take(5).collect::<Vec<_>>()}),
    );
    if ok == BURST {
        latency(rig, &cluster, report).await;
    }
}
