//! Deliberately broken transports, to show that the bench's check catches them (`--break`, a
//! hidden option for the tests): each wraps the receiving end of a real link and spoils message
//! as a faulty mechanism could.

use clap::ValueEnum;
use common::Result;

use crate::mechs::Link;

/// The message each breakage spoils, counted from the first streamed one (a swap needs two
/// messages in flight, which round trips never have).
pub const AT: u64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Breakage {
    /// Delivers only the first and the last 8 bytes of the message.
    DropMiddle,
    /// Delivers the message before it again (and this one after).
    Repeat,
    /// Delivers the next message first, then this one.
    Swap,
    /// Loses the message (in a round trip: both sides then wait for good).
    Lose,
}

/// `inner` with `how` applied to its receiving side, at the `at`th message it delivers.
pub fn wrap(inner: Box<dyn Link>, how: Breakage, at: u64) -> Box<dyn Link> {
    Box::new(Broken { inner, how, at, n: 0, prev: Vec::new(), held: None })
}

struct Broken {
    inner: Box<dyn Link>,
    how: Breakage,
    at: u64,
    /// Messages delivered so far.
    n: u64,
    prev: Vec<u8>,
    held: Option<Vec<u8>>,
}

impl Link for Broken {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.inner.send(msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let n = self.n;
        self.n += 1;
        if let Some(held) = self.held.take() {
            buf.copy_from_slice(&held);
            return Ok(());
        }
        match self.how {
            Breakage::Repeat if n == self.at => {
                self.held = Some(self.receive(buf.len())?);
                buf.copy_from_slice(&self.prev);
            }
            Breakage::Swap if n == self.at => {
                let this = self.receive(buf.len())?;
                buf.copy_from_slice(&self.receive(buf.len())?);
                self.held = Some(this);
            }
            Breakage::Lose if n == self.at => {
                self.receive(buf.len())?;
                self.inner.recv(buf)?;
            }
            Breakage::DropMiddle if n == self.at => {
                let whole = self.receive(buf.len())?;
                let end = buf.len() - 8;
                buf[..8].copy_from_slice(&whole[..8]);
                buf[end..].copy_from_slice(&whole[end..]);
            }
            _ => {
                self.inner.recv(buf)?;
                self.prev = buf.to_vec();
            }
        }
        Ok(())
    }
}

impl Broken {
    fn receive(&mut self, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.inner.recv(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    use super::*;
    use crate::msg::{Expect, Stamp, WORD};

    /// A loopback link in one process: what is sent is received, in order.
    struct Loop(Rc<RefCell<VecDeque<Vec<u8>>>>);

    impl Link for Loop {
        fn send(&mut self, msg: &[u8]) -> Result<()> {
            self.0.borrow_mut().push_back(msg.to_vec());
            Ok(())
        }

        fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
            let m = self.0.borrow_mut().pop_front().unwrap_or_default();
            let n = m.len().min(buf.len());
            buf[..n].copy_from_slice(&m[..n]);
            Ok(())
        }
    }

    /// Sends messages 0..10 through `how` (or an intact loop) and receives them as the bench
    /// does; returns the first error.
    fn run(how: Option<Breakage>, size: usize) -> Option<String> {
        let q = Rc::new(RefCell::new(VecDeque::new()));
        let mut tx: Box<dyn Link> = Box::new(Loop(q.clone()));
        let mut rx: Box<dyn Link> = Box::new(Loop(q));
        if let Some(how) = how {
            rx = wrap(rx, how, AT);
        }
        let (mut out, mut buf) = (vec![0u8; size], vec![0u8; size]);
        for seq in 0..10 {
            tx.send_seq(&Stamp::new(seq), &mut out).ok()?;
        }
        (0..10).find_map(|seq| rx.recv_seq(&mut buf, &Expect::new(seq, false)).err().map(|e| e.to_string()))
    }

    #[test]
    fn an_intact_transport_passes() {
        for size in [WORD, 64, 4096] {
            assert_eq!(run(None, size), None, "size {size}");
        }
    }

    #[test]
    fn every_breakage_is_caught_at_the_message_it_spoils() {
        for (how, says) in [
            (Breakage::DropMiddle, "bytes 8..16 are not this message's"),
            (Breakage::Repeat, "carries number 4"),
            (Breakage::Swap, "carries number 6"),
        ] {
            for size in [64, 4096] {
                let err = run(Some(how), size).unwrap_or_else(|| panic!("{how:?} at {size} B passed the check"));
                assert!(err.starts_with(&format!("message {AT}: ")) && err.contains(says), "{how:?}: {err}");
            }
        }
        // One word carries only the head: a repeat or a swap is still caught.
        assert!(run(Some(Breakage::Repeat), WORD).is_some_and(|e| e.contains("carries number 4")));
    }
}
