//! Transcript driver for the machine tests. It plays a script against a fresh
//! machine the way the session driver would (step until "need more", stop
//! stepping while a login is in flight, drop buffered bytes at STARTTLS), once
//! with each input chunk whole and again one byte (and a few bytes) at a time,
//! checks that every run saw the same, and returns what happened as readable
//! lines.

use bytes::BytesMut;

/// How the driver treats a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    NeedMore,
    /// Send and keep stepping.
    Continue,
    /// Stop stepping until the next call in the script (login in flight).
    Pause,
    /// Drop every buffered and not yet fed byte, then keep stepping (STARTTLS:
    /// later input is what arrives over TLS).
    Discard,
    /// The machine is finished: record the leftover and end the run.
    Stop,
}

/// A machine (stepped through [`crate::proto::Machine`], as the driver
/// does) whose steps a transcript can describe.
pub(super) trait Described: crate::proto::Machine {
    fn describe(step: &Self::Step) -> (Flow, String);
}

pub(super) type Call<M> = Box<dyn Fn(&mut M) -> Option<<M as crate::proto::Machine>::Step>>;

pub(super) enum Action<M: Described> {
    Feed(Vec<u8>),
    Call(Call<M>),
}

pub(super) fn feed<M: Described>(bytes: &[u8]) -> Action<M> {
    Action::Feed(bytes.to_vec())
}

pub(super) fn call<M: Described>(f: impl Fn(&mut M) -> Option<M::Step> + 'static) -> Action<M> {
    Action::Call(Box::new(f))
}

/// Steps a machine may take for one input before the test calls it stuck.
const MAX_STEPS: usize = 10_000;

/// Chunk sizes every script is replayed in, besides whole.
const CHUNK_SIZES: [usize; 4] = [1, 2, 3, 7];

/// Runs `script` whole, then byte by byte and in a few other chunk sizes;
/// every run must agree.
pub(super) fn run<M: Described>(new: impl Fn() -> M, script: &[Action<M>]) -> Vec<String> {
    let whole = run_once(new(), script, usize::MAX);
    for chunk in CHUNK_SIZES {
        let chunked = run_once(new(), script, chunk);
        assert_eq!(
            whole, chunked,
            "feeding {chunk} byte(s) at a time changed the outcome"
        );
    }
    whole
}

fn run_once<M: Described>(mut machine: M, script: &[Action<M>], chunk: usize) -> Vec<String> {
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut paused = false;
    for action in script {
        let flow = match action {
            Action::Feed(bytes) => {
                match feed_chunks(&mut machine, &mut buf, &mut events, bytes, chunk, paused) {
                    Some(flow) => flow,
                    None => return events,
                }
            }
            Action::Call(f) => {
                paused = false;
                match f(&mut machine) {
                    Some(step) => record(&mut machine, &mut buf, &mut events, step),
                    None => drain(&mut machine, &mut buf, &mut events),
                }
            }
        };
        match flow {
            Flow::Stop => return finish(events, &buf),
            Flow::Pause => paused = true,
            _ => {}
        }
    }
    finish(events, &buf)
}

/// Feeds `bytes` in chunks; `None` when the machine stopped (events are final).
fn feed_chunks<M: Described>(
    machine: &mut M,
    buf: &mut BytesMut,
    events: &mut Vec<String>,
    bytes: &[u8],
    chunk: usize,
    mut paused: bool,
) -> Option<Flow> {
    let mut pos = 0;
    while pos < bytes.len() {
        let end = bytes.len().min(pos.saturating_add(chunk));
        buf.extend_from_slice(&bytes[pos..end]);
        pos = end;
        if paused {
            continue;
        }
        match drain(machine, buf, events) {
            Flow::Stop => {
                buf.extend_from_slice(&bytes[pos..]);
                *events = finish(std::mem::take(events), buf);
                return None;
            }
            Flow::Pause => paused = true,
            Flow::Discard => {
                buf.clear();
                pos = bytes.len();
                match drain(machine, buf, events) {
                    Flow::Stop => {
                        *events = finish(std::mem::take(events), buf);
                        return None;
                    }
                    Flow::Pause => paused = true,
                    _ => {}
                }
            }
            Flow::NeedMore | Flow::Continue => {}
        }
    }
    Some(if paused { Flow::Pause } else { Flow::NeedMore })
}

fn record<M: Described>(
    machine: &mut M,
    buf: &mut BytesMut,
    events: &mut Vec<String>,
    step: M::Step,
) -> Flow {
    let (flow, text) = M::describe(&step);
    events.push(text);
    match flow {
        Flow::Continue | Flow::NeedMore => drain(machine, buf, events),
        other => other,
    }
}

fn drain<M: Described>(machine: &mut M, buf: &mut BytesMut, events: &mut Vec<String>) -> Flow {
    for _ in 0..MAX_STEPS {
        let step = machine.step(buf);
        let (flow, text) = M::describe(&step);
        if flow == Flow::NeedMore {
            return flow;
        }
        events.push(text);
        if flow != Flow::Continue {
            return flow;
        }
    }
    panic!("machine did not settle after {MAX_STEPS} steps");
}

fn finish(mut events: Vec<String>, buf: &[u8]) -> Vec<String> {
    if !buf.is_empty() {
        events.push(format!("leftover: {}", String::from_utf8_lossy(buf)));
    }
    events
}
