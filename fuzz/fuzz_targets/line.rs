//! Property: take_line returns only whole lines within `max`, consumes exactly
//! the line and its terminator, and leaves the buffer alone otherwise.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mailgate::proto::line::{Line, take_line, verb_and_rest};

fuzz_target!(|data: &[u8]| {
    let Some((&max, body)) = data.split_first() else {
        return;
    };
    let max = usize::from(max);
    let mut buf = BytesMut::from(body);
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= body.len() + 1);
        let before = buf.clone();
        match take_line(&mut buf, max) {
            Line::Complete(line) => {
                assert!(line.len() <= max);
                assert!(!line.contains(&b'\n'));
                let used = before.len() - buf.len();
                assert!(used == line.len() + 1 || used == line.len() + 2);
                assert_eq!(&before[..line.len()], &line[..]);
                assert_eq!(before[used - 1], b'\n');
                let _ = verb_and_rest(&line);
            }
            Line::Incomplete => {
                assert_eq!(buf, before);
                assert!(!buf.contains(&b'\n'));
                assert!(buf.len() <= max + 1);
                return;
            }
            Line::TooLong => {
                assert_eq!(buf, before);
                return;
            }
        }
    }
});
