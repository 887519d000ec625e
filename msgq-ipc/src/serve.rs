//! Two-way traffic over one queue (M6): requests go in with type 1 and the text `<pid> <message>`;
//! the server replies with type `<pid>`, so each client takes only its own reply.

use common::{Error, Result};

/// The type every request is sent with.
pub const REQUEST_TYPE: i64 = 1;

/// The text of a request from process `pid`.
pub fn request(pid: u32, message: &[u8]) -> Vec<u8> {
    let mut text = format!("{pid} ").into_bytes();
    text.extend_from_slice(message);
    text
}

/// Splits a request into the client's PID (its reply type) and its message.
pub fn parse_request(text: &[u8]) -> Result<(i64, &[u8])> {
    let bad = || Error::Failed(format!("not a request (want '<pid> <message>'): {:?}", String::from_utf8_lossy(text)));
    let space = text.iter().position(|&b| b == b' ').ok_or_else(bad)?;
    let pid: i64 = std::str::from_utf8(&text[..space]).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    if pid <= REQUEST_TYPE {
        return Err(bad()); // a reply type must differ from the request type
    }
    Ok((pid, &text[space + 1..]))
}

/// The reply text to `message`.
pub fn reply(message: &[u8]) -> Vec<u8> {
    let mut text = b"re: ".to_vec();
    text.extend_from_slice(message);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let req = request(4242, b"hi there");
        let (pid, msg) = parse_request(&req).unwrap();
        assert_eq!((pid, msg), (4242, &b"hi there"[..]));
        assert!(parse_request(b"nopid").is_err());
        assert!(parse_request(b"1 pid one would be a request").is_err());
        assert_eq!(reply(b"x"), b"re: x");
    }
}
