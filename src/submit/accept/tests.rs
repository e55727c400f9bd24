//! `serve()` over a real loopback socket with a recording sink: what the
//! client reads, what the sink got, the timeouts of each phase and the
//! byte counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout};

use super::serve::serve_with;
use super::*;
use crate::base::BoxFuture;

const MAX: usize = 4096;

/// Records what it is given; refuses senders named `forbidden@…` and
/// answers every message with `verdict` after `delay`.
struct Recording {
    messages: Mutex<Vec<Message>>,
    verdict: Option<Reply>,
    delay: Duration,
}

impl Recording {
    fn new(verdict: Option<Reply>, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            messages: Mutex::new(Vec::new()),
            verdict,
            delay,
        })
    }
}

impl MessageSink for Recording {
    fn max_size(&self) -> usize {
        MAX
    }

    fn check_sender<'a>(&'a self, from: &'a str) -> BoxFuture<'a, Result<(), Reply>> {
        Box::pin(async move {
            if from.starts_with("forbidden@") {
                return Err(Reply {
                    code: 550,
                    text: format!("5.7.60 Not allowed to send as {from}"),
                });
            }
            Ok(())
        })
    }

    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), Reply>> {
        Box::pin(async move {
            sleep(self.delay).await;
            self.messages.lock().unwrap().push(message);
            self.verdict.clone().map_or(Ok(()), Err)
        })
    }
}

fn limits(command: u64, data: u64) -> ServerLimits {
    ServerLimits {
        command_timeout: Duration::from_millis(command),
        data_timeout: Duration::from_millis(data),
    }
}

/// Serves one loopback connection; the client writes `wire` and reads until
/// the server closes. Returns what the client read and how `serve` ended.
async fn session(
    leftover: &[u8],
    wire: &[u8],
    sink: Arc<Recording>,
    limits: ServerLimits,
    sink_timeout: Duration,
) -> (String, Result<RelayStats, RelayError>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (near, far) = tokio::join!(listener.accept(), TcpStream::connect(addr));
    let (near, mut far) = (Stream::Plain(near.unwrap().0), far.unwrap());
    let server = tokio::spawn(serve_with(
        near,
        BytesMut::from(leftover),
        sink,
        limits,
        "gate.test".into(),
        sink_timeout,
    ));
    far.write_all(wire).await.unwrap();
    let mut read = Vec::new();
    timeout(Duration::from_secs(10), far.read_to_end(&mut read))
        .await
        .expect("the server closes within 10 s")
        .unwrap();
    let end = timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    (String::from_utf8(read).unwrap(), end)
}

const TRANSACTION: &[u8] =
    b"RCPT TO:<b@y.test>\r\nDATA\r\nSubject: t\r\n\r\n..dot\r\n.\r\nQUIT\r\n";

#[tokio::test]
async fn a_message_gets_250_once_the_sink_has_it() {
    let sink = Recording::new(None, Duration::ZERO);
    let leftover = b"MAIL FROM:<a@x.test> SIZE=100\r\n";
    let (read, end) = session(
        leftover,
        TRANSACTION,
        Arc::clone(&sink),
        limits(5_000, 5_000),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        read,
        "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n\
         250 2.0.0 Message accepted for delivery\r\n221 2.0.0 Bye\r\n"
    );
    let stats = end.unwrap();
    assert_eq!(
        stats.client_to_upstream,
        (leftover.len() + TRANSACTION.len()) as u64
    );
    assert_eq!(stats.upstream_to_client, read.len() as u64);
    let messages = sink.messages.lock().unwrap();
    assert_eq!(
        messages[0].envelope,
        Envelope {
            from: "a@x.test".into(),
            recipients: vec!["b@y.test".into()],
            eight_bit: false,
            smtputf8: false,
        }
    );
    assert_eq!(&messages[0].content[..], b"Subject: t\r\n\r\n.dot\r\n");
}

#[tokio::test]
async fn ehlo_offers_the_sinks_size() {
    let sink = Recording::new(None, Duration::ZERO);
    let (read, _) = session(
        b"",
        b"EHLO c.test\r\nQUIT\r\n",
        sink,
        limits(5_000, 5_000),
        Duration::from_secs(5),
    )
    .await;
    assert!(read.contains(&format!("250-SIZE {MAX}\r\n")), "{read}");
    assert_eq!(extensions(MAX)[1], format!("SIZE {MAX}"));
}

#[tokio::test]
async fn refusals_are_passed_through_as_they_are() {
    for (code, text) in [
        (451, "4.7.500 Server busy, retry in 30 seconds"),
        (550, "5.7.1 Not permitted"),
        (554, "5.6.0 Message rejected: bad MIME"),
    ] {
        let verdict = Reply {
            code,
            text: text.into(),
        };
        let sink = Recording::new(Some(verdict), Duration::ZERO);
        let (read, end) = session(
            b"MAIL FROM:<a@x.test>\r\n",
            TRANSACTION,
            Arc::clone(&sink),
            limits(5_000, 5_000),
            Duration::from_secs(5),
        )
        .await;
        assert!(
            read.contains(&format!("\r\n{code} {text}\r\n221 ")),
            "{read}"
        );
        assert!(!read.contains("250 2.0.0"), "{read}");
        assert!(end.is_ok());
    }
}

#[tokio::test]
async fn a_forbidden_sender_is_refused_before_data() {
    let sink = Recording::new(None, Duration::ZERO);
    let (read, _) = session(
        b"",
        b"MAIL FROM:<forbidden@x.test>\r\nRCPT TO:<b@y.test>\r\nQUIT\r\n",
        Arc::clone(&sink),
        limits(5_000, 5_000),
        Duration::from_secs(5),
    )
    .await;
    assert!(read.starts_with("550 5.7.60 Not allowed to send as forbidden@x.test\r\n503 "));
    assert!(sink.messages.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_slow_sink_does_not_count_against_the_data_timeout() {
    let sink = Recording::new(None, Duration::from_millis(400));
    let (read, end) = session(
        b"MAIL FROM:<a@x.test>\r\n",
        TRANSACTION,
        sink,
        limits(5_000, 100),
        Duration::from_secs(5),
    )
    .await;
    assert!(read.contains("250 2.0.0 Message accepted"), "{read}");
    assert!(end.is_ok());
}

#[tokio::test]
async fn a_sink_that_never_answers_gets_451() {
    let sink = Recording::new(None, Duration::from_secs(60));
    let (read, _) = session(
        b"MAIL FROM:<a@x.test>\r\n",
        TRANSACTION,
        sink,
        limits(5_000, 5_000),
        Duration::from_millis(100),
    )
    .await;
    assert!(read.contains("\r\n451 4.4.1 "), "{read}");
}

#[tokio::test]
async fn a_stalled_message_times_out_with_421() {
    let sink = Recording::new(None, Duration::ZERO);
    let (read, end) = session(
        b"MAIL FROM:<a@x.test>\r\n",
        b"RCPT TO:<b@y.test>\r\nDATA\r\npart of a line",
        Arc::clone(&sink),
        limits(5_000, 150),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        read.ends_with(
            "421 4.4.2 gate.test Timeout waiting for the message, closing connection\r\n"
        ),
        "{read}"
    );
    assert!(matches!(end, Err(RelayError::Idle(d)) if d == Duration::from_millis(150)));
    assert!(sink.messages.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_silent_client_times_out_with_421() {
    let sink = Recording::new(None, Duration::ZERO);
    let (read, end) = session(
        b"",
        b"NOOP\r\nNO",
        sink,
        limits(150, 5_000),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        read,
        "250 2.0.0 OK\r\n421 4.4.2 gate.test Timeout waiting for a command, closing connection\r\n"
    );
    assert!(matches!(end, Err(RelayError::Idle(_))));
}

#[tokio::test]
async fn an_oversized_message_is_read_to_the_end_and_refused() {
    let sink = Recording::new(None, Duration::ZERO);
    let mut wire = b"RCPT TO:<b@y.test>\r\nDATA\r\n".to_vec();
    for _ in 0..(2 * MAX / 100) {
        wire.extend_from_slice(&[b'z'; 98]);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b".\r\nQUIT\r\n");
    let (read, end) = session(
        b"MAIL FROM:<a@x.test>\r\n",
        &wire,
        Arc::clone(&sink),
        limits(5_000, 5_000),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        read.ends_with(&format!(
            "552 5.3.4 Message too big (at most {MAX} bytes)\r\n221 2.0.0 Bye\r\n"
        )),
        "{read}"
    );
    assert!(end.is_ok());
    assert!(sink.messages.lock().unwrap().is_empty());
}
