//! Transcripts of the post-AUTH server machine, each re-fed in several chunk
//! sizes (one byte at a time included), as the driver would.

use bytes::BytesMut;

use super::*;

const MAX: usize = 1000;

#[derive(Debug, Default)]
struct Run {
    out: String,
    checked: Vec<String>,
    delivered: Vec<Transaction>,
    closed: Option<&'static str>,
}

type Verdict<T> = fn(&T) -> Result<(), Refusal>;

fn accept<T: ?Sized>(_: &T) -> Result<(), Refusal> {
    Ok(())
}

fn refuse(code: u16, text: &str) -> Refusal {
    Refusal {
        code,
        text: text.into(),
    }
}

/// Steps a fresh machine over `wire` in `chunk`-byte pieces.
fn run_with(wire: &[u8], chunk: usize, sender: Verdict<str>, deliver: Verdict<Transaction>) -> Run {
    let mut m = SmtpServer::new("gate.test", MAX);
    let (mut buf, mut run) = (BytesMut::new(), Run::default());
    let mut pieces = wire.chunks(chunk.max(1));
    for _ in 0..1_000_000 {
        match m.step(&mut buf) {
            ServerStep::NeedMore => match pieces.next() {
                Some(piece) => buf.extend_from_slice(piece),
                None => return run,
            },
            ServerStep::Reply(bytes) => run.out.push_str(&String::from_utf8_lossy(&bytes)),
            ServerStep::CheckSender(from) => {
                m.sender_checked(sender(&from));
                run.checked.push(from);
            }
            ServerStep::Deliver(t) => {
                m.delivered(deliver(&t));
                run.delivered.push(t);
            }
            ServerStep::Close { reply, reason } => {
                run.out.push_str(&String::from_utf8_lossy(&reply));
                run.closed = Some(reason);
                return run;
            }
        }
    }
    panic!("the machine did not settle");
}

/// Runs `wire` in every interesting chunk size and checks they all agree.
fn run(wire: &[u8]) -> Run {
    let whole = run_with(wire, wire.len(), accept, accept);
    for chunk in [1, 2, 3, 7, 64] {
        let piecewise = run_with(wire, chunk, accept, accept);
        assert_eq!(piecewise.out, whole.out, "chunk {chunk}");
        assert_eq!(piecewise.delivered, whole.delivered, "chunk {chunk}");
    }
    whole
}

fn codes(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.as_bytes().get(3) != Some(&b'-'))
        .map(|l| &l[..3])
        .collect()
}

/// The message content a transaction with this DATA text delivers.
fn content_of(text: &[u8]) -> Vec<u8> {
    let mut wire = b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n".to_vec();
    wire.extend_from_slice(text);
    let r = run(&wire);
    assert_eq!(r.delivered.len(), 1, "{text:?}: {}", r.out);
    r.delivered[0].content.to_vec()
}

#[test]
fn a_whole_transaction() {
    let r = run(b"EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    assert_eq!(
        r.out,
        "250-gate.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n\
         250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.1.5 Recipient OK\r\n\
         354 Start mail input; end with <CRLF>.<CRLF>\r\n250 2.0.0 Message accepted for delivery\r\n221 2.0.0 Bye\r\n"
    );
    assert_eq!(r.checked, ["a@x.test"]);
    assert_eq!(
        r.delivered,
        [Transaction {
            from: "a@x.test".into(),
            recipients: vec!["b@y.test".into(), "c@y.test".into()],
            eight_bit: false,
            smtputf8: false,
            content: Bytes::from_static(b"Subject: hi\r\n\r\nbody\r\n"),
        }]
    );
    assert_eq!(r.closed, Some("client quit"));
}

#[test]
fn pipelined_replies_go_out_in_one_batch_in_order() {
    let mut m = SmtpServer::new("gate.test", MAX);
    let mut buf = BytesMut::from(
        &b"NOOP\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<>\r\nDATA\r\n"[..],
    );
    assert_eq!(
        m.step(&mut buf),
        ServerStep::Reply(b"250 2.0.0 OK\r\n".to_vec())
    );
    assert_eq!(m.step(&mut buf), ServerStep::CheckSender("a@x.test".into()));
    assert_eq!(
        m.step(&mut buf),
        ServerStep::NeedMore,
        "waits for the check"
    );
    m.sender_checked(Ok(()));
    let ServerStep::Reply(batch) = m.step(&mut buf) else {
        panic!("one batch expected")
    };
    assert_eq!(
        codes(&String::from_utf8(batch).unwrap()),
        ["250", "250", "501", "354"]
    );
    assert!(m.in_data());
    assert_eq!(m.step(&mut buf), ServerStep::NeedMore);
}

#[test]
fn dot_unstuffing_and_line_ends() {
    let cases: &[(&[u8], &[u8])] = &[
        (b".\r\n", b""),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"..a\r\n.\r\n", b".a\r\n"),
        (b"...\r\n.\r\n", b"..\r\n"),
        (b". \r\n.\r\n", b" \r\n"),
        (b"a.\r\n.b\r\n.\r\n", b"a.\r\nb\r\n"),
        // A bare LF ends a line and becomes CRLF, the final `.` included.
        (b"a\nb\r\n.\n", b"a\r\nb\r\n"),
        // A lone CR is text, even right after a leading dot.
        (b"a\rb\r\n.\rx\r\n\r\r\n.\r\n", b"a\rb\r\n\rx\r\n\r\r\n"),
        // `.` then CR at the very end is not the end yet.
        (b"x\r\n.\r", b""),
        (b"\r\n\r\n.\r\n", b"\r\n\r\n"),
        (b"8bit \xc3\xa9\xff\r\n.\r\n", b"8bit \xc3\xa9\xff\r\n"),
    ];
    for (text, want) in cases {
        if text.ends_with(b"\r") {
            let mut wire = b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n".to_vec();
            wire.extend_from_slice(text);
            assert!(run(&wire).delivered.is_empty());
            continue;
        }
        assert_eq!(
            content_of(text),
            *want,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn commands_pipelined_behind_the_final_dot_are_answered() {
    let r =
        run(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nx\r\n.\r\nNOOP\r\nQUIT\r\n");
    assert_eq!(codes(&r.out), ["250", "250", "354", "250", "250", "221"]);
}

#[test]
fn long_data_lines_are_bounded_by_the_message_size_only() {
    let line = vec![b'x'; MAX - 2];
    let mut text = line.clone();
    text.extend_from_slice(b"\r\n.\r\n");
    assert_eq!(content_of(&text).len(), MAX);
}

#[test]
fn message_size_is_bounded_at_mail_and_in_data() {
    let r = run(b"MAIL FROM:<a@x.test> SIZE=1001\r\nMAIL FROM:<a@x.test> SIZE=99999999999999999999999\r\nMAIL FROM:<a@x.test> SIZE=x\r\nMAIL FROM:<a@x.test> SIZE=1000\r\n");
    assert_eq!(codes(&r.out), ["552", "552", "501", "250"]);
    assert!(
        r.out.starts_with(
            "552 5.3.4 Message size exceeds fixed maximum message size (1000 bytes)\r\n"
        )
    );

    let mut wire = b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n".to_vec();
    wire.extend_from_slice(&vec![b'y'; MAX - 1]);
    wire.extend_from_slice(
        b"\r\n.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nok\r\n.\r\n",
    );
    let r = run(&wire);
    assert_eq!(
        codes(&r.out),
        ["250", "250", "354", "552", "250", "250", "354", "250"]
    );
    assert!(
        r.out
            .contains("552 5.3.4 Message too big (at most 1000 bytes)\r\n")
    );
    assert_eq!(r.delivered.len(), 1);
    assert_eq!(&r.delivered[0].content[..], b"ok\r\n");
}

#[test]
fn recipients_are_bounded() {
    let mut wire = b"MAIL FROM:<a@x.test>\r\n".to_vec();
    for i in 0..=MAX_RECIPIENTS {
        wire.extend_from_slice(format!("RCPT TO:<r{i}@y.test>\r\n").as_bytes());
    }
    wire.extend_from_slice(b"DATA\r\nx\r\n.\r\n");
    let r = run_with(&wire, wire.len(), accept, accept);
    assert!(
        r.out
            .contains("452 4.5.3 Too many recipients (at most 100)\r\n")
    );
    assert_eq!(r.delivered[0].recipients.len(), MAX_RECIPIENTS);
}

#[test]
fn command_lines_are_bounded() {
    let mut ok = b"NOOP ".to_vec();
    ok.resize(MAX_COMMAND_LINE, b'x');
    ok.extend_from_slice(b"\r\n");
    assert_eq!(run(&ok).out, "250 2.0.0 OK\r\n");
    let mut long = b"NOOP ".to_vec();
    long.resize(MAX_COMMAND_LINE + 1, b'x');
    long.extend_from_slice(b"\r\n");
    let r = run(&long);
    assert_eq!(r.out, "500 5.5.2 Line too long, closing connection\r\n");
    assert_eq!(r.closed, Some("command line too long"));
    // Without a line end at all.
    let r = run(&vec![b'x'; MAX_COMMAND_LINE + 2]);
    assert_eq!(r.closed, Some("command line too long"));
}

#[test]
fn mail_parameters() {
    let r = run(b"MAIL FROM:<a@x.test> BODY=8BITMIME SMTPUTF8 SIZE=10\r\nRCPT TO:<b@y.test>\r\nDATA\r\n\xe2\x9c\x93\r\n.\r\n\
        MAIL FROM:<a@x.test> body=7bit\r\nRCPT TO:<b@y.test>\r\nDATA\r\nx\r\n.\r\n");
    assert!(r.delivered[0].eight_bit && r.delivered[0].smtputf8);
    assert!(!r.delivered[1].eight_bit && !r.delivered[1].smtputf8);
    let r = run(b"MAIL FROM:<a@x.test> BODY=BINARYMIME\r\nMAIL FROM:<a@x.test> FOO=1\r\nMAIL FROM:<a@x.test> SMTPUTF8=yes\r\n\
        MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test> NOTIFY=NEVER\r\n");
    assert_eq!(codes(&r.out), ["501", "555", "555", "250", "555"]);
    assert!(r.out.contains("555 5.5.4 Unsupported parameter FOO\r\n"));
    assert!(r.out.contains("555 5.5.4 Unsupported parameter NOTIFY\r\n"));
}

#[test]
fn utf8_addresses_need_smtputf8() {
    let r = run("MAIL FROM:<jörg@x.test>\r\nMAIL FROM:<jörg@x.test> SMTPUTF8\r\nRCPT TO:<用户@例子.广告>\r\nDATA\r\nx\r\n.\r\n".as_bytes());
    assert_eq!(codes(&r.out), ["553", "250", "250", "354", "250"]);
    assert!(r.out.starts_with("553 5.6.7 "));
    assert_eq!(r.delivered[0].from, "jörg@x.test");
    assert_eq!(r.delivered[0].recipients, ["用户@例子.广告"]);
    let r = run(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<\xe4@x.test>\r\nMAIL FROM:<\xff\xfe@x.test> SMTPUTF8\r\n");
    assert_eq!(codes(&r.out), ["250", "553", "503"]);
}

#[test]
fn paths() {
    let r = run(b"MAIL FROM:<>\r\nRCPT TO:<@relay.test,@r2.test:b@y.test>\r\nRCPT TO:<>\r\nRCPT TO:<\"a b>c\"@y.test>\r\n\
        RCPT TO:<a b@y.test>\r\nRCPT TO:b@y.test\r\nRCPT TO:<x\x01@y.test>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n.\r\n");
    assert_eq!(
        codes(&r.out),
        [
            "250", "250", "501", "250", "501", "501", "501", "250", "354", "250"
        ]
    );
    assert_eq!(r.checked, [""]);
    assert_eq!(
        r.delivered[0].recipients,
        ["b@y.test", "\"a b>c\"@y.test", "Postmaster"]
    );
    let long = format!(
        "MAIL FROM:<{}@x.test>\r\nMAIL FROM: <a@x.test>\r\nMAIL FROM:a@x.test\r\n",
        "a".repeat(250)
    );
    assert_eq!(codes(&run(long.as_bytes()).out), ["501", "250", "503"]);
}

#[test]
fn command_order_and_the_other_commands() {
    let r = run(b"RCPT TO:<b@y.test>\r\nDATA\r\nMAIL FROM:<a@x.test>\r\nDATA\r\nMAIL FROM:<a@x.test>\r\nRSET\r\nRCPT TO:<b@y.test>\r\n\
        MAIL FROM:<a@x.test>\r\nHELO again.test\r\nRCPT TO:<b@y.test>\r\nAUTH PLAIN\r\nSTARTTLS\r\nBDAT 10 LAST\r\nVRFY a\r\nEXPN l\r\nHELP\r\nXYZZY\r\nNOOP\r\nRSET x\r\nDATA x\r\nEHLO\r\nQUIT\r\n");
    assert_eq!(
        codes(&r.out),
        [
            "503", "503", "250", "554", "503", "250", "503", "250", "250", "503", "503", "503",
            "502", "252", "252", "214", "500", "250", "501", "501", "501", "221"
        ]
    );
    assert!(r.out.contains("503 5.5.1 Already authenticated\r\n"));
    assert!(r.out.contains("250 gate.test\r\n"));
    assert!(r.delivered.is_empty());
}

#[test]
fn the_backend_verdicts_are_passed_on() {
    let wire = b"MAIL FROM:<boss@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nx\r\n.\r\nRCPT TO:<b@y.test>\r\n";
    let r = run_with(
        wire,
        wire.len(),
        |from| match from {
            "boss@x.test" => Err(refuse(550, "5.7.60 Not allowed to send as boss@x.test")),
            _ => Ok(()),
        },
        |_| Err(refuse(451, "4.7.500 Server busy\r\ninjected")),
    );
    assert_eq!(
        r.out,
        "550 5.7.60 Not allowed to send as boss@x.test\r\n503 5.5.1 Need MAIL command first\r\n503 5.5.1 Need MAIL command first\r\n\
         250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n\
         451 4.7.500 Server busy injected\r\n503 5.5.1 Need MAIL command first\r\n"
    );
    for code in [550, 554] {
        let r = run_with(
            wire,
            5,
            accept,
            if code == 550 {
                |_: &Transaction| Err(refuse(550, "5.7.1 No"))
            } else {
                |_: &Transaction| Err(refuse(554, "5.6.0 Bad message"))
            },
        );
        assert!(r.out.contains(&format!("{code} ")), "{}", r.out);
    }
}

#[test]
fn too_many_errors_close() {
    let r = run(&b"XYZZY\r\n".repeat(MAX_ERRORS + 5));
    assert_eq!(codes(&r.out).len(), MAX_ERRORS);
    assert!(
        r.out
            .ends_with("421 4.7.0 Too many errors, closing connection\r\n")
    );
    assert_eq!(r.closed, Some("too many errors"));
    let mut wire = b"XYZZY\r\n".repeat(MAX_ERRORS - 1);
    wire.extend_from_slice(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nx\r\n.\r\n");
    wire.extend_from_slice(&b"XYZZY\r\n".repeat(MAX_ERRORS - 1));
    assert_eq!(
        run(&wire).closed,
        None,
        "an accepted message starts the count again"
    );
}

#[test]
fn timeout_reply_names_the_phase() {
    let mut m = SmtpServer::new("gate.test", MAX);
    assert!(
        String::from_utf8(m.timeout_reply())
            .unwrap()
            .starts_with("421 4.4.2 gate.test Timeout waiting for a command")
    );
    let mut buf = BytesMut::from(&b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"[..]);
    let _ = m.step(&mut buf);
    m.sender_checked(Ok(()));
    let _ = m.step(&mut buf);
    assert!(m.in_data());
    assert!(
        String::from_utf8(m.timeout_reply())
            .unwrap()
            .contains("waiting for the message")
    );
}
