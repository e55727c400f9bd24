use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use tokio::task::JoinHandle;

type Relay = JoinHandle<Result<RelayStats, RelayError>>;

/// Starts a relay between two fresh in-memory pipes of `capacity` bytes;
/// returns the client's and the upstream's far ends and the relay task.
fn start(
    capacity: usize,
    leftovers: (&'static [u8], &'static [u8]),
    idle: Duration,
) -> (DuplexStream, DuplexStream, Relay) {
    let (mut client, client_far) = duplex(capacity);
    let (mut upstream, upstream_far) = duplex(capacity);
    let task = tokio::spawn(async move {
        relay(&mut client, &mut upstream, leftovers.0, leftovers.1, idle).await
    });
    (client_far, upstream_far, task)
}

#[tokio::test]
async fn leftovers_first_then_both_directions_and_half_close() {
    let (mut client_far, mut upstream_far, task) =
        start(1024, (b"early ", b"hello "), Duration::from_secs(5));
    client_far.write_all(b"from client").await.unwrap();
    client_far.shutdown().await.unwrap();
    let mut got = Vec::new();
    upstream_far.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"early from client");
    upstream_far.write_all(b"from upstream").await.unwrap();
    upstream_far.shutdown().await.unwrap();
    let mut got = Vec::new();
    client_far.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello from upstream");
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        stats,
        RelayStats {
            client_to_upstream: 17,
            upstream_to_client: 19
        }
    );
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_ends_a_silent_session() {
    let (_client_far, _upstream_far, task) = start(64, (b"", b""), Duration::from_secs(30));
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, RelayError::Idle(_)));
}

#[tokio::test(start_paused = true)]
async fn traffic_postpones_the_idle_timeout() {
    let (mut client_far, mut upstream_far, task) = start(64, (b"", b""), Duration::from_secs(30));
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(20)).await;
        client_far.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        upstream_far.read_exact(&mut b).await.unwrap();
    }
    assert!(
        !task.is_finished(),
        "100 s of traffic every 20 s must not hit a 30 s idle timeout"
    );
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(matches!(task.await.unwrap(), Err(RelayError::Idle(_))));
}

#[tokio::test]
async fn slow_reader_applies_backpressure() {
    let (mut client_far, mut upstream_far, _task) =
        start(4096, (b"", b""), Duration::from_secs(60));
    // The client never reads: the upstream writer must block once the
    // bounded buffers are full instead of the relay buffering without limit.
    let chunk = vec![7u8; 16 * 1024];
    let mut written = 0usize;
    let write_more = async {
        loop {
            upstream_far.write_all(&chunk).await.unwrap();
            written += chunk.len();
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(300), write_more).await;
    assert!(
        written <= 4096 + RELAY_BUFFER + 4096 + chunk.len(),
        "wrote {written} bytes to a stalled client"
    );
    let mut b = [0u8; 1];
    client_far.read_exact(&mut b).await.unwrap();
}

#[tokio::test]
async fn upstream_half_close_reaches_the_client_while_the_client_still_sends() {
    let (mut client_far, mut upstream_far, task) = start(1024, (b"", b""), Duration::from_secs(5));
    upstream_far.write_all(b"* BYE\r\n").await.unwrap();
    upstream_far.shutdown().await.unwrap();
    let mut got = Vec::new();
    client_far.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"* BYE\r\n");
    assert!(!task.is_finished(), "the client's direction is still open");
    client_far.write_all(b"a1 LOGOUT\r\n").await.unwrap();
    client_far.shutdown().await.unwrap();
    let mut got = Vec::new();
    upstream_far.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"a1 LOGOUT\r\n");
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        stats,
        RelayStats {
            client_to_upstream: 11,
            upstream_to_client: 7
        }
    );
}

#[tokio::test]
async fn client_half_close_reaches_the_upstream_while_the_upstream_still_answers() {
    let (mut client_far, mut upstream_far, task) = start(1024, (b"", b""), Duration::from_secs(5));
    client_far.write_all(b"QUIT\r\n").await.unwrap();
    client_far.shutdown().await.unwrap();
    let mut got = Vec::new();
    upstream_far.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"QUIT\r\n");
    assert!(
        !task.is_finished(),
        "the upstream's direction is still open"
    );
    upstream_far.write_all(b"221 Bye\r\n").await.unwrap();
    upstream_far.shutdown().await.unwrap();
    let mut got = Vec::new();
    client_far.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"221 Bye\r\n");
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        stats,
        RelayStats {
            client_to_upstream: 6,
            upstream_to_client: 9
        }
    );
}

/// 32 MiB each way at once, through pipes smaller than the relay's buffers,
/// compared byte for byte.
#[tokio::test]
async fn thirty_two_mib_each_way_arrive_intact() {
    const TOTAL: usize = 32 * 1024 * 1024;
    let down: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    let up: Vec<u8> = (0..TOTAL).map(|i| (i % 253) as u8).collect();
    let (mut client_far, mut upstream_far, task) =
        start(16 * 1024, (b"", b""), Duration::from_secs(60));
    let (mut client_read, mut client_write) = tokio::io::split(&mut client_far);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(&mut upstream_far);
    let transfer = async {
        let send_down = async {
            upstream_write.write_all(&down).await.unwrap();
            upstream_write.shutdown().await.unwrap();
        };
        let send_up = async {
            client_write.write_all(&up).await.unwrap();
            client_write.shutdown().await.unwrap();
        };
        let mut got_down = Vec::with_capacity(TOTAL);
        let mut got_up = Vec::with_capacity(TOTAL);
        let recv_down = client_read.read_to_end(&mut got_down);
        let recv_up = upstream_read.read_to_end(&mut got_up);
        let ((), (), d, u) = tokio::join!(send_down, send_up, recv_down, recv_up);
        assert_eq!(d.unwrap(), TOTAL);
        assert_eq!(u.unwrap(), TOTAL);
        (got_down, got_up)
    };
    let (got_down, got_up) = tokio::time::timeout(Duration::from_secs(120), transfer)
        .await
        .expect("32 MiB each way did not pass in time");
    assert!(got_down == down, "upstream to client bytes differ");
    assert!(got_up == up, "client to upstream bytes differ");
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        stats,
        RelayStats {
            client_to_upstream: TOTAL as u64,
            upstream_to_client: TOTAL as u64
        }
    );
}
