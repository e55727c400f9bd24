//! A TCP relay on loopback that delays every chunk by a fixed one-way delay
//! in each direction, standing in for a distant upstream (the kernel has no
//! netem). Order is preserved: one reader and one writer task per direction,
//! joined by a bounded channel, each chunk written at `arrival + delay`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Default one-way delay: 5 ms, a 10 ms round trip.
const DEFAULT_RTT_MS: u64 = 10;
/// Chunks in flight per direction.
const QUEUE: usize = 256;
/// A relayed connection lives at most this long.
const MAX_LIFE: Duration = Duration::from_secs(600);

/// Round trip from `MAILGATE_BENCH_RTT_MS`, else 10 ms.
pub fn rtt() -> Duration {
    let ms = std::env::var("MAILGATE_BENCH_RTT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RTT_MS);
    Duration::from_millis(ms)
}

pub struct DelayRelay {
    pub addr: SocketAddr,
    pub rtt: Duration,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on 127.0.0.1 and forwards each connection to `target`.
pub async fn start(target: SocketAddr, rtt: Duration) -> DelayRelay {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
    let addr = listener.local_addr().expect("relay address");
    let one_way = rtt / 2;
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let _ = tokio::time::timeout(MAX_LIFE, async {
                    tokio::join!(pipe(cr, sw, one_way), pipe(sr, cw, one_way))
                })
                .await;
            });
        }
    });
    DelayRelay { addr, rtt, task }
}

async fn pipe<R, W>(mut from: R, mut to: W, delay: Duration)
where
    R: AsyncReadExt + Unpin + Send + 'static,
    W: AsyncWriteExt + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
