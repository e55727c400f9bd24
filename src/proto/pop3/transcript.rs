//! Transcript driver for the POP3 and SMTP machine tests. It plays the
//! session driver's part: bytes arrive in chunks of a chosen size, `step` is
//! called until the machine needs more or asks the driver to act. Every
//! transcript runs once with whole writes and once one byte at a time, with
//! the same expectations, so results cannot depend on how TCP splits data.

use bytes::BytesMut;

use crate::proto::{Action, ClientStep, Machine, Step, UpstreamStep};

/// A step as a transcript sees it: [`Step`] says when the machine needs
/// more bytes; this adds where a transcript stops stepping.
pub(crate) trait Pauses: std::fmt::Debug + Step {
    /// The driver would stop stepping and act (log in, TLS, close). A client
    /// pauses at STARTTLS (the test then reports `tls_established`); an
    /// upstream does not: the driver upgrades and steps again, which a
    /// transcript cannot tell apart.
    fn pauses(&self) -> bool;
}

impl Pauses for ClientStep {
    fn pauses(&self) -> bool {
        !matches!(self, ClientStep::Reply(_))
    }
}

impl Pauses for UpstreamStep {
    fn pauses(&self) -> bool {
        self.action() == Action::Yield
    }
}

/// Upper bound on steps for one `send`, so a machine that never asks for
/// more input fails the test instead of hanging it.
const MAX_STEPS_PER_SEND: usize = 10_000;

pub(crate) struct Transcript<M> {
    pub machine: M,
    pub buffer: BytesMut,
    chunk: usize,
}

impl<M: Machine<Step: Pauses>> Transcript<M> {
    pub fn new(machine: M, chunk: usize) -> Self {
        Self {
            machine,
            buffer: BytesMut::new(),
            chunk,
        }
    }

    /// Delivers `bytes` in chunks and returns every step that was not
    /// "need more". Stops at a pausing step; bytes not yet delivered are then
    /// appended unread, so the buffer holds the same leftovers in every mode.
    pub fn send(&mut self, bytes: &[u8]) -> Vec<M::Step> {
        let mut steps = Vec::new();
        let mut chunks = bytes.chunks(self.chunk.max(1));
        if bytes.is_empty() && self.drain(&mut steps) {
            return steps;
        }
        while let Some(chunk) = chunks.next() {
            self.buffer.extend_from_slice(chunk);
            if self.drain(&mut steps) {
                for rest in chunks.by_ref() {
                    self.buffer.extend_from_slice(rest);
                }
                break;
            }
        }
        steps
    }

    /// Steps until "need more" (false) or a pausing step (true).
    fn drain(&mut self, steps: &mut Vec<M::Step>) -> bool {
        for _ in 0..MAX_STEPS_PER_SEND {
            let step = self.machine.step(&mut self.buffer);
            if step.action() == Action::Read {
                return false;
            }
            let pause = step.pauses();
            steps.push(step);
            if pause {
                return true;
            }
        }
        panic!("machine did not ask for more input within {MAX_STEPS_PER_SEND} steps");
    }
}

/// Runs `script` with whole writes, then one byte at a time.
pub(crate) fn both_ways<M: Machine<Step: Pauses>>(
    make: impl Fn() -> M,
    script: impl Fn(&mut Transcript<M>),
) {
    for chunk in [usize::MAX, 1] {
        let mut t = Transcript::new(make(), chunk);
        script(&mut t);
    }
}

/// `ClientStep::Reply` from text.
pub(crate) fn reply(text: &str) -> ClientStep {
    ClientStep::Reply(text.as_bytes().to_vec())
}

/// `UpstreamStep::Send` from text.
pub(crate) fn send(text: &str) -> UpstreamStep {
    UpstreamStep::Send(crate::secret::Secret::new(text.as_bytes().to_vec()))
}
