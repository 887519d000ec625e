//! The benchmark's message: every byte depends on its sequence number, so a transport that loses,
//! repeats, reorders or half-delivers a message cannot pass the receiver's check, and a receive
//! buffer is poisoned before each receive so that bytes a transport never wrote cannot pass
//! either. Layout, in 8-byte little-endian words (sizes are multiples of 8):
//! - word 0, the head: the sequence number, 7 bits per byte, top bit of every byte set;
//! - word i >= 1: `(mix(seq) ^ i * ODD) | TOP`, a hash of the number and the word's place.
//!
//! The top bit of every byte is set, so no byte is NUL and the message also fits C strings.
//! Filling and checking are one multiply-free pass over the words, no formatting, so they cost
//! less than copying the message once.

use common::{Error, Result};

/// Bytes in a word; the smallest message (the signal row's sigval) is one word, the head.
pub const WORD: usize = 8;

/// Marks the message that ends a throughput run; its low bits still count on, so that no two
/// messages of a direction have the same head (the shared-memory rings rely on that).
pub const STOP_BIT: u64 = 1 << 55;

/// Sequence numbers have 56 bits (7 per byte of the head).
pub const SEQ_MASK: u64 = (1 << 56) - 1;

const TOP: u64 = 0x8080_8080_8080_8080;
const ODD: u64 = 0x0101_0101_0101_0101 * 0x3b; // a different step in every byte

/// The poison written over a receive buffer before each receive: not a valid word.
pub const POISON: u8 = 0;

/// Odd, so multiplying by it modulo 2^56 is a bijection: the head of the next message differs in
/// (nearly) every byte, not only in the lowest.
const SPREAD: u64 = 0x00d6_e8fe_b866_59fd;
/// Its inverse modulo 2^56 (Newton's iteration: each step doubles the correct low bits).
const UNSPREAD: u64 = {
    let mut x = SPREAD;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(SPREAD.wrapping_mul(x)));
        i += 1;
    }
    x
};

/// The head word of message `seq`.
pub fn head(seq: u64) -> u64 {
    let t = seq.wrapping_mul(SPREAD) & SEQ_MASK;
    (0..8).fold(TOP, |w, k| w | ((t >> (7 * k)) & 0x7f) << (8 * k))
}

/// The sequence number a head carries.
pub fn seq_of_head(word: u64) -> u64 {
    let t = (0..8).fold(0, |s, k| s | ((word >> (8 * k)) & 0x7f) << (7 * k));
    t.wrapping_mul(UNSPREAD) & SEQ_MASK
}

/// splitmix64's finaliser: every bit of the result depends on every bit of `seq`.
fn mix(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Message `seq`'s head word and hash key, computed ahead: a sender or receiver does it before the
/// clock starts or while it waits, so a round trip's critical path only stores and compares.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    pub seq: u64,
    pub head: u64,
    key: u64,
}

impl Stamp {
    pub fn new(seq: u64) -> Stamp {
        Stamp { seq, head: head(seq), key: mix(seq) }
    }
}

/// What a receiver accepts next: message `seq`, or also the stop message `STOP_BIT | seq`.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    pub normal: Stamp,
    pub stop: Option<Stamp>,
}

impl Expect {
    pub fn new(seq: u64, stop_ok: bool) -> Expect {
        Expect { normal: Stamp::new(seq), stop: stop_ok.then(|| Stamp::new(STOP_BIT | seq)) }
    }
}

/// Body word i (i >= 1) of the message with hash key `key`; `step` is i * ODD (mod 2^64).
#[inline(always)]
fn body_word(key: u64, step: u64) -> u64 {
    (key ^ step) | TOP
}

/// The words after the head of message `s`, in order (word 1, 2, ...), for a message built or
/// checked where it lies (in shared memory, word by word).
pub fn body_words(s: &Stamp) -> BodyWords {
    BodyWords { key: s.key, step: ODD }
}

#[derive(Clone)]
pub struct BodyWords {
    key: u64,
    step: u64,
}

impl Iterator for BodyWords {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let w = body_word(self.key, self.step);
        self.step = self.step.wrapping_add(ODD);
        Some(w)
    }
}

/// Writes the words after the head (`body` starts at byte 8 of the message).
#[inline]
pub fn fill_body(body: &mut [u8], s: &Stamp) {
    let mut step = ODD; // word 1's; an addition per word, which vectorises
    for w in body.chunks_exact_mut(WORD) {
        w.copy_from_slice(&body_word(s.key, step).to_le_bytes());
        step = step.wrapping_add(ODD);
    }
}

/// Writes message `s` over `out`.
#[inline]
pub fn fill(out: &mut [u8], s: &Stamp) {
    out[..WORD].copy_from_slice(&s.head.to_le_bytes());
    fill_body(&mut out[WORD..], s);
}

/// Whether `body` (bytes 8.. of a message) is message `s`'s.
fn body_ok(body: &[u8], s: &Stamp) -> bool {
    let mut step = ODD;
    let mut diff = 0u64;
    for w in body.chunks_exact(WORD) {
        diff |= u64::from_le_bytes(w.try_into().unwrap_or_default()) ^ body_word(s.key, step);
        step = step.wrapping_add(ODD);
    }
    diff == 0 && body.len().is_multiple_of(WORD)
}

/// The byte offset (in the message) of the first word of `body` that is not message `s`'s.
fn first_bad_word(body: &[u8], s: &Stamp) -> usize {
    let mut want = vec![0u8; body.len()];
    fill_body(&mut want, s);
    let at = body.chunks(WORD).zip(want.chunks(WORD)).position(|(a, b)| a != b).unwrap_or(0);
    WORD * (at + 1)
}

/// Checks a received message split as head word and body against what `e` accepts. Returns the
/// number it carries.
pub fn check_parts(first: u64, body: &[u8], size: usize, e: &Expect) -> Result<u64> {
    check_body(first, body.len(), size, e, |s| body_ok(body, s), |s| first_bad_word(body, s))
}

/// [`check_parts`] with the body as its little-endian words, read where they lie (a clone of
/// the iterator looks again to find the first bad word of a damaged message).
pub fn check_words(
    first: u64,
    body: impl ExactSizeIterator<Item = u64> + Clone,
    size: usize,
    e: &Expect,
) -> Result<u64> {
    let len = body.len() * WORD;
    let ok = |s: &Stamp| body.clone().zip(body_words(s)).fold(0, |diff, (got, want)| diff | (got ^ want)) == 0;
    let first_bad =
        |s: &Stamp| WORD * (1 + body.clone().zip(body_words(s)).position(|(got, want)| got != want).unwrap_or(0));
    check_body(first, len, size, e, ok, first_bad)
}

/// What [`check_parts`] and [`check_words`] share: the size, then the head, then the body (`ok`;
/// `first_bad` says where it is damaged).
fn check_body(
    first: u64,
    len: usize,
    size: usize,
    e: &Expect,
    ok: impl Fn(&Stamp) -> bool,
    first_bad: impl Fn(&Stamp) -> usize,
) -> Result<u64> {
    let expect = e.normal.seq;
    let bad = |what: String| Err(Error::Failed(format!("message {expect}: {what}")));
    if len + WORD != size {
        return bad(format!("{} bytes, not {size}", len + WORD));
    }
    let s = match e.stop {
        _ if first == e.normal.head => e.normal,
        Some(stop) if first == stop.head => stop,
        _ => {
            let seq = seq_of_head(first);
            if head(seq) != first {
                return bad(format!("head word {first:#018x} is no sequence number (not delivered?)"));
            }
            return bad(format!("carries number {seq} (lost, repeated or reordered)"));
        }
    };
    if !ok(&s) {
        let at = first_bad(&s);
        return bad(format!("bytes {}..{} are not this message's (lost or mixed with another)", at, at + WORD));
    }
    Ok(s.seq)
}

/// Checks a whole received message (see [`check_parts`]).
///
/// The common case, message `e.normal` of the right size, is one pass over the words that only
/// XORs and ORs, inlined into the receiver; anything else (a stop message, damage) goes the
/// general way, which gives the same answer and says what is wrong.
#[inline]
pub fn check(m: &[u8], size: usize, e: &Expect) -> Result<u64> {
    if m.len() == size && size >= WORD && is_message(m, &e.normal) {
        return Ok(e.normal.seq);
    }
    check_slow(m, size, e)
}

/// Whether `m` (a multiple of 8 long, at least a word) is message `s`, every byte of it.
#[inline(always)]
fn is_message(m: &[u8], s: &Stamp) -> bool {
    let (head, body) = m.split_at(WORD);
    let mut diff = u64::from_le_bytes(head.try_into().unwrap_or_default()) ^ s.head;
    let mut step = ODD;
    let mut words = body.chunks_exact(WORD);
    for w in &mut words {
        diff |= u64::from_le_bytes(w.try_into().unwrap_or_default()) ^ body_word(s.key, step);
        step = step.wrapping_add(ODD);
    }
    diff == 0 && words.remainder().is_empty()
}

/// [`check`] the general way.
#[cold]
#[inline(never)]
fn check_slow(m: &[u8], size: usize, e: &Expect) -> Result<u64> {
    if m.len() < WORD {
        return Err(Error::Failed(format!("message {}: {} bytes, not {size}", e.normal.seq, m.len())));
    }
    let first = u64::from_le_bytes(m[..WORD].try_into().unwrap_or_default());
    check_parts(first, &m[WORD..], size, e)
}

/// Whether a size can carry the layout.
pub fn valid_size(size: usize) -> bool {
    size >= WORD && size.is_multiple_of(WORD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_messages_check_and_any_damage_is_caught() {
        let mut m = vec![0u8; 64];
        fill(&mut m, &Stamp::new(7));
        assert_eq!(check(&m, 64, &Expect::new(7, false)).ok(), Some(7));
        assert!(check(&m, 64, &Expect::new(8, false)).is_err(), "wrong number");
        assert!(!m.contains(&0), "no NUL: fits a C string");
        for byte in 0..64 {
            let mut bad = m.clone();
            bad[byte] ^= 1;
            assert!(check(&bad, 64, &Expect::new(7, false)).is_err(), "flipped bit in byte {byte}");
        }
        let mut other = vec![0u8; 64];
        fill(&mut other, &Stamp::new(8));
        assert!(m.chunks(8).zip(other.chunks(8)).all(|(a, b)| a != b), "every word depends on the number");
        assert!(m[..8].iter().zip(&other[..8]).all(|(a, b)| a != b), "so does every byte of the head");
        fill(&mut m, &Stamp::new(STOP_BIT | 9));
        assert_eq!(check(&m, 64, &Expect::new(9, true)).ok(), Some(STOP_BIT | 9));
        assert!(check(&m, 64, &Expect::new(9, false)).is_err());
        let mut word = [0u8; 8];
        fill(&mut word, &Stamp::new(5));
        assert_eq!(check(&word, 8, &Expect::new(5, false)).ok(), Some(5));
        assert_eq!(seq_of_head(head(SEQ_MASK)), SEQ_MASK);
    }
}
