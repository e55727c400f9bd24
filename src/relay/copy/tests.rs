use super::*;

use std::io;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use crate::relay::RELAY_BUFFER;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufStream, DuplexStream, duplex};

/// Drives `copy` until `far` has read `want` bytes; the copy must not end.
async fn pass<A, B>(copy: &mut CopyBoth<'_, A, B>, far: &mut DuplexStream, want: usize) -> Vec<u8>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut got = vec![0u8; want];
    let run = async {
        tokio::select! {
            done = &mut *copy => panic!("copy ended early: {done:?}"),
            read = far.read_exact(&mut got) => { read.unwrap(); }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the bytes did not arrive");
    got
}

/// Lets `copy` run alone for `d` (the clock is paused in these tests).
async fn run_for<A, B>(copy: &mut CopyBoth<'_, A, B>, d: Duration)
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    assert!(
        tokio::time::timeout(d, &mut *copy).await.is_err(),
        "copy ended early"
    );
}

#[tokio::test(start_paused = true)]
async fn no_buffer_before_data_one_page_on_data_freed_when_quiet() {
    let (mut a, mut a_far) = duplex(1024);
    let (mut b, mut b_far) = duplex(1024);
    let mut copy = CopyBoth::new(&mut a, &mut b);
    run_for(&mut copy, Duration::from_millis(10)).await;
    assert_eq!(copy.held(), (0, 0), "nothing read, nothing allocated");

    a_far.write_all(b"a1 IDLE\r\n").await.unwrap();
    assert_eq!(pass(&mut copy, &mut b_far, 9).await, b"a1 IDLE\r\n");
    b_far.write_all(b"+ idling\r\n").await.unwrap();
    assert_eq!(pass(&mut copy, &mut a_far, 10).await, b"+ idling\r\n");
    assert_eq!(copy.held(), (FIRST_BUFFER, FIRST_BUFFER));

    run_for(&mut copy, RELEASE_AFTER / 2).await;
    assert_eq!(
        copy.held(),
        (FIRST_BUFFER, FIRST_BUFFER),
        "kept while briefly quiet"
    );
    run_for(&mut copy, RELEASE_AFTER).await;
    assert_eq!(copy.held(), (0, 0), "freed after a quiet period");
    assert!(copy.release.is_none(), "no timer left for a quiet session");

    a_far.write_all(b"DONE\r\n").await.unwrap();
    assert_eq!(pass(&mut copy, &mut b_far, 6).await, b"DONE\r\n");
    assert_eq!(copy.held(), (FIRST_BUFFER, 0), "allocated again on traffic");
    assert_eq!(copy.allocations(), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn full_reads_double_the_buffer_up_to_relay_buffer() {
    let (mut a, mut a_far) = duplex(1024 * 1024);
    let (mut b, mut b_far) = duplex(1024 * 1024);
    let mut copy = CopyBoth::new(&mut a, &mut b);
    let data: Vec<u8> = (0..512 * 1024).map(|i: u32| (i % 251) as u8).collect();
    a_far.write_all(&data).await.unwrap();
    assert_eq!(pass(&mut copy, &mut b_far, data.len()).await, data);
    assert_eq!(copy.held(), (RELAY_BUFFER, 0));
    // 4, 8, 16, 32 and 64 KiB, then 64 KiB reads until the end.
    assert_eq!(copy.allocations(), (5, 0));
    run_for(&mut copy, RELEASE_AFTER * 2).await;
    assert_eq!(copy.held(), (0, 0));

    a_far.write_all(b"x").await.unwrap();
    pass(&mut copy, &mut b_far, 1).await;
    assert_eq!(
        copy.held(),
        (FIRST_BUFFER, 0),
        "a grown buffer starts small again"
    );
}

/// A side whose reads deliver `total` bytes of a known pattern, at most
/// `burst` between two `Pending`s (as a TLS stream does between segments),
/// and then nothing; its writes are checked against the same pattern.
struct Trickle {
    sent: usize,
    total: usize,
    burst: usize,
    left_in_burst: usize,
    received: Rc<Cell<usize>>,
}

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.sent == self.total {
            return Poll::Pending;
        }
        if self.left_in_burst == 0 {
            self.left_in_burst = self.burst;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = buf
            .remaining()
            .min(self.left_in_burst)
            .min(self.total - self.sent);
        let start = self.sent;
        let bytes: Vec<u8> = (start..start + n).map(pattern).collect();
        buf.put_slice(&bytes);
        self.sent += n;
        self.left_in_burst -= n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let at = self.received.get();
        for (k, byte) in buf.iter().enumerate() {
            assert_eq!(*byte, pattern(at + k), "byte {} differs", at + k);
        }
        self.received.set(at + buf.len());
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(start_paused = true)]
async fn bulk_transfer_with_pauses_allocates_only_while_growing() {
    const TOTAL: usize = 32 * 1024 * 1024;
    let received = Rc::new(Cell::new(0));
    let mut a = Trickle {
        sent: 0,
        total: TOTAL,
        burst: 100 * 1024,
        left_in_burst: 0,
        received: Rc::new(Cell::new(0)),
    };
    let mut b = Trickle {
        sent: 0,
        total: 0,
        burst: 1,
        left_in_burst: 0,
        received: received.clone(),
    };
    let mut copy = CopyBoth::new(&mut a, &mut b);
    let mut polls = 0u32;
    let drive = std::future::poll_fn(|cx| {
        polls += 1;
        assert!(polls < 100_000, "no progress after {polls} polls");
        let _ = Pin::new(&mut copy).poll(cx);
        if received.get() == TOTAL {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    tokio::time::timeout(Duration::from_secs(60), drive)
        .await
        .expect("32 MiB did not pass");
    // The reader returned `Pending` after every 100 KiB (328 times), and the
    // buffer was allocated only while it grew: 5 allocations for 32 MiB.
    assert_eq!(copy.allocations(), (5, 0));
    assert_eq!(copy.held(), (RELAY_BUFFER, 0));
}

#[tokio::test(start_paused = true)]
async fn flushes_a_buffered_writer_when_the_reader_has_nothing() {
    let (client, mut client_far) = duplex(1024);
    let (mut upstream, mut upstream_far) = duplex(1024);
    let mut client = BufStream::new(client);
    let mut copy = CopyBoth::new(&mut client, &mut upstream);
    upstream_far.write_all(b"+ idling\r\n").await.unwrap();
    assert_eq!(pass(&mut copy, &mut client_far, 10).await, b"+ idling\r\n");
    drop(copy);
    drop(upstream);
    let mut rest = Vec::new();
    upstream_far.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}
