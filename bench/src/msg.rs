//! The benchmark's message: every one is checked on arrival, so a fast but wrong mechanism cannot
//! win. Layout (all ASCII, no NUL, so it also fits the note's C-string segment):
//! `[seq: 16 hex][checksum: 16 hex][filler ...][seq: 16 hex]`; the checksum is the wrapping sum of
//! the message's 8-byte words with the checksum field left out. The signal row carries only the
//! 8-byte sigval word: its seq.

use common::{Error, Result};

/// The smallest message with the full layout.
pub const MIN_SIZE: usize = 48;

/// The sequence number that ends a throughput run.
pub const STOP: u64 = u64::MAX;

pub struct Message(Vec<u8>);

/// The signal row's message: the seq itself, as the 8-byte sigval word.
pub const WORD: usize = 8;

impl Message {
    pub fn new(size: usize) -> Message {
        assert!(size == WORD || (size >= MIN_SIZE && size.is_multiple_of(8)), "message size {size}");
        Message((0..size).map(|i| b'A' + (i % 26) as u8).collect())
    }

    /// Writes `seq` at both ends and the checksum.
    pub fn stamp(&mut self, seq: u64) -> &[u8] {
        if self.0.len() == WORD {
            self.0.copy_from_slice(&seq.to_le_bytes());
            return &self.0;
        }
        let n = self.0.len();
        hex(seq, &mut self.0[0..16]);
        hex(seq, &mut self.0[n - 16..]);
        let sum = checksum(&self.0);
        hex(sum, &mut self.0[16..32]);
        &self.0
    }
}

fn hex(v: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

fn unhex(s: &[u8]) -> Option<u64> {
    std::str::from_utf8(s).ok().and_then(|t| u64::from_str_radix(t, 16).ok())
}

fn checksum(m: &[u8]) -> u64 {
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or_default());
    let head = m[..16].chunks_exact(8).map(word);
    let rest = m[32..].chunks_exact(8).map(word);
    head.chain(rest).fold(0u64, u64::wrapping_add)
}

/// The seq a received message says it carries (for the end marker).
pub fn seq_of(m: &[u8]) -> Option<u64> {
    if m.len() == WORD {
        return m.try_into().ok().map(u64::from_le_bytes);
    }
    unhex(m.get(..16)?)
}

/// Checks a received message: its size, both seqs and the checksum.
pub fn check(m: &[u8], size: usize, expect: u64) -> Result<()> {
    let bad = |what: &str| Err(Error::Failed(format!("message {expect}: {what}")));
    if m.len() != size {
        return bad(&format!("{} bytes, not {size}", m.len()));
    }
    if size == WORD {
        return if seq_of(m) == Some(expect) { Ok(()) } else { bad(&format!("sequence {:?}", seq_of(m))) };
    }
    let n = m.len();
    if unhex(&m[..16]) != Some(expect) || unhex(&m[n - 16..]) != Some(expect) {
        return bad(&format!("sequence {:?}/{:?} (lost, doubled or reordered)", seq_of(m), unhex(&m[n - 16..])));
    }
    if unhex(&m[16..32]) != Some(checksum(m)) {
        return bad("checksum mismatch (corrupted payload)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_messages_check_and_corruption_is_caught() {
        let mut m = Message::new(64);
        let sent = m.stamp(7).to_vec();
        assert!(check(&sent, 64, 7).is_ok());
        assert!(check(&sent, 64, 8).is_err(), "wrong seq");
        let mut bad = sent.clone();
        bad[40] ^= 1;
        assert!(check(&bad, 64, 7).is_err(), "flipped payload bit");
        assert!(!sent.contains(&0), "no NUL: fits a C string");
        assert_eq!(seq_of(m.stamp(STOP)), Some(STOP));
    }
}
