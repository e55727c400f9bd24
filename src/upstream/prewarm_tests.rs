//! The pool on loopback servers that greet and then hold, close or talk.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::*;
use crate::config::{Upstream, UpstreamTls};

const GREETING: &[u8] = b"* OK ready\r\n";

/// What the fake upstream does after accepting.
#[derive(Clone, Copy)]
enum After {
    /// Greets and holds the connection open.
    Hold,
    /// Greets and closes.
    Close,
    /// Greets, then sends a BYE shortly after.
    Bye,
    /// Closes without a greeting.
    Refuse,
}

/// A loopback upstream; returns its port and the count of accepted connections.
async fn upstream(after: After) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            if matches!(after, After::Refuse) {
                continue;
            }
            let _ = s.write_all(GREETING).await;
            match after {
                After::Hold => held.push(s),
                After::Bye => {
                    tokio::spawn(async move {
                        sleep(Duration::from_millis(50)).await;
                        let _ = s.write_all(b"* BYE idle\r\n").await;
                        sleep(Duration::from_secs(5)).await;
                    });
                }
                After::Close | After::Refuse => {}
            }
        }
    });
    (port, accepted)
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        upstream: Upstream {
            host: "127.0.0.1".into(),
            port,
            tls: UpstreamTls::None,
            server_name: "localhost".into(),
            ca_file: None,
        },
        tls: crate::tls::upstream_config(None).unwrap(),
        connect_timeout: Duration::from_secs(5),
        login_timeout: Duration::from_secs(5),
        prewarm: None,
    }
}

fn timing() -> Timing {
    Timing {
        max_age: Duration::from_secs(30),
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        sweep: Duration::from_millis(20),
    }
}

/// Waits (at most 5 s, 500 polls) until `pool` holds `n` connections.
async fn filled(pool: &Pool, n: usize) {
    for _ in 0..500 {
        if pool.len() == n {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("pool holds {} connections, not {n}", pool.len());
}

async fn pushed(pool: &Pool, port: u16) {
    pool.push(warm(&endpoint(port), Protocol::Imap).await.unwrap());
}

#[test]
fn greeting_completeness_per_protocol() {
    assert!(!greeting_complete(Protocol::Imap, b""));
    assert!(!greeting_complete(Protocol::Imap, b"* OK rea"));
    assert!(greeting_complete(Protocol::Imap, b"* OK ready\r\n"));
    assert!(greeting_complete(Protocol::Pop3, b"+OK\r\n"));
    assert!(!greeting_complete(Protocol::Smtp, b"220-first\r\n"));
    assert!(!greeting_complete(Protocol::Smtp, b"220-first\r\n220 la"));
    assert!(greeting_complete(
        Protocol::Smtp,
        b"220-first\r\n220 last\r\n"
    ));
    assert!(greeting_complete(Protocol::Smtp, b"220\r\n"));
}

#[tokio::test]
async fn a_connection_is_taken_once_with_its_greeting_and_replaced() {
    let (port, accepted) = upstream(After::Hold).await;
    let pool = Arc::new(Pool::new("prewarm-take", 2, timing()));
    let (_stop, stopped) = watch::channel(false);
    let task = spawn(&pool, endpoint(port), Protocol::Imap, stopped);
    filled(&pool, 2).await;
    let first = pool.take().expect("a warm connection");
    assert_eq!(&first.buf[..], GREETING);
    let second = pool.take().expect("another one");
    assert_eq!(&second.buf[..], GREETING);
    filled(&pool, 2).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    task.abort();
}

#[tokio::test]
async fn an_empty_pool_is_a_miss_not_a_wait() {
    let pool = Pool::new("prewarm-empty", 1, timing());
    let started = std::time::Instant::now();
    assert!(pool.take().is_none());
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn connections_past_their_age_are_not_handed_over() {
    let (port, _) = upstream(After::Hold).await;
    let timing = Timing {
        max_age: Duration::from_millis(100),
        ..timing()
    };
    let pool = Pool::new("prewarm-age", 1, timing);
    pushed(&pool, port).await;
    sleep(Duration::from_millis(150)).await;
    assert!(pool.take().is_none());
    assert!(pool.is_empty());
}

#[tokio::test]
async fn closed_or_talking_connections_are_not_handed_over() {
    for after in [After::Close, After::Bye] {
        let (port, _) = upstream(after).await;
        let pool = Pool::new("prewarm-closed", 1, timing());
        pushed(&pool, port).await;
        sleep(Duration::from_millis(150)).await;
        assert!(pool.take().is_none());
    }
}

#[tokio::test]
async fn the_sweep_replaces_closed_connections() {
    let (port, accepted) = upstream(After::Close).await;
    let pool = Arc::new(Pool::new("prewarm-sweep", 1, timing()));
    let (_stop, stopped) = watch::channel(false);
    let task = spawn(&pool, endpoint(port), Protocol::Imap, stopped);
    for _ in 0..300 {
        if accepted.load(Ordering::SeqCst) >= 3 {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert!(accepted.load(Ordering::SeqCst) >= 3);
    task.abort();
}

#[tokio::test]
async fn failed_connects_back_off() {
    let (port, accepted) = upstream(After::Refuse).await;
    let pool = Arc::new(Pool::new("prewarm-backoff", 1, timing()));
    let (_stop, stopped) = watch::channel(false);
    let task = spawn(&pool, endpoint(port), Protocol::Imap, stopped);
    sleep(Duration::from_millis(1000)).await;
    task.abort();
    // 0, 100, 300, 700 ms: four attempts in a second, give or take one.
    let n = accepted.load(Ordering::SeqCst);
    assert!((2..=6).contains(&n), "{n} attempts");
    assert!(pool.is_empty());
}

#[tokio::test]
async fn shutdown_and_dropping_the_pool_end_the_task() {
    let (port, _) = upstream(After::Hold).await;
    let pool = Arc::new(Pool::new("prewarm-stop", 1, timing()));
    let (stop, stopped) = watch::channel(false);
    let task = spawn(&pool, endpoint(port), Protocol::Imap, stopped);
    filled(&pool, 1).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();

    let (_stop, stopped) = watch::channel(false);
    let task = spawn(&pool, endpoint(port), Protocol::Imap, stopped);
    drop(pool);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
