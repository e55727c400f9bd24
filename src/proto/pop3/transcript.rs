//! Transcript driver for the POP3 and SMTP machine tests. It plays the
//! session driver's part: bytes arrive in chunks of a chosen size, `step` is
//! called until the machine needs more or asks the driver to act. Every
//! transcript runs once with whole writes and once one byte at a time, with
//! the same expectations, so results cannot depend on how TCP splits data.

use bytes::BytesMut;

use crate::proto::{
    Action, ClientMachine, ClientStep, Machine, Step, UpstreamMachine, UpstreamStep,
};

/// A machine as the driver sees it: stepped through [`Machine`], which also
/// says when it needs more bytes; this adds where a transcript pauses.
pub(crate) trait Scripted {
    type Inner: Machine<Step = Self::Step>;
    type Step: std::fmt::Debug + Step;
    fn inner(&mut self) -> &mut Self::Inner;
    /// The driver would stop stepping and act (log in, TLS, close).
    fn pauses(step: &Self::Step) -> bool;
}

/// Upper bound on steps for one `send`, so a machine that never asks for
/// more input fails the test instead of hanging it.
const MAX_STEPS_PER_SEND: usize = 10_000;

pub(crate) struct Transcript<M> {
    pub machine: M,
    pub buffer: BytesMut,
    chunk: usize,
}

impl<M: Scripted> Transcript<M> {
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
            let step = self.machine.inner().step(&mut self.buffer);
            if step.action() == Action::Read {
                return false;
            }
            let pause = M::pauses(&step);
            steps.push(step);
            if pause {
                return true;
            }
        }
        panic!("machine did not ask for more input within {MAX_STEPS_PER_SEND} steps");
    }
}

/// Runs `script` with whole writes, then one byte at a time.
pub(crate) fn both_ways<M: Scripted>(make: impl Fn() -> M, script: impl Fn(&mut Transcript<M>)) {
    for chunk in [usize::MAX, 1] {
        let mut t = Transcript::new(make(), chunk);
        script(&mut t);
    }
}

/// Wraps a client machine for [`Transcript`].
pub(crate) struct Client<C>(pub C);

impl<C: ClientMachine> Scripted for Client<C> {
    type Inner = C;
    type Step = ClientStep;
    fn inner(&mut self) -> &mut C {
        &mut self.0
    }
    fn pauses(step: &ClientStep) -> bool {
        !matches!(step, ClientStep::Reply(_))
    }
}

/// Wraps an upstream machine for [`Transcript`]. `StartTls` does not pause:
/// the driver upgrades and steps again, which a transcript cannot tell apart.
pub(crate) struct Upstream<U>(pub U);

impl<U: UpstreamMachine> Scripted for Upstream<U> {
    type Inner = U;
    type Step = UpstreamStep;
    fn inner(&mut self) -> &mut U {
        &mut self.0
    }
    fn pauses(step: &UpstreamStep) -> bool {
        matches!(
            step,
            UpstreamStep::Authenticated(_) | UpstreamStep::Rejected(_)
        )
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
