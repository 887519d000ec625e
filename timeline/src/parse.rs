//! The lines of `--trace --trace-time`, read back: `8123.456789 [reader 2974] msgrcv(5, ...) = 20
//! <0.302957>` into its time, its program, its call split into arguments, its result and how long
//! it took.

/// One traced call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// CLOCK_MONOTONIC, ns: when the call began if it can wait, else when it returned.
    pub at: u64,
    /// How long it took, for a call that can wait (`<0.000123>`).
    pub took: Option<u64>,
    pub bin: String,
    pub pid: u32,
    /// `msgrcv`.
    pub name: String,
    /// The arguments at the top level, as printed: `5`, `{mtype=1, mtext="one\0"}`, `8192`.
    pub args: Vec<String>,
    /// What it returned, as printed, without a library call's comment: `20`, `-1 ENOMSG (...)`.
    pub ret: String,
}

impl Call {
    /// The errno's name if it failed: `ENOMSG`.
    pub fn errno(&self) -> Option<&str> {
        let rest = self.ret.strip_prefix("-1 ").or_else(|| self.ret.strip_prefix("? "))?;
        rest.split_whitespace().next()
    }

    pub fn ok(&self) -> bool {
        self.errno().is_none()
    }

    pub fn arg(&self, n: usize) -> &str {
        self.args.get(n).map_or("", String::as_str)
    }

    /// When it returned.
    pub fn end(&self) -> u64 {
        self.at + self.took.unwrap_or(0)
    }
}

/// A trace line, or None for any other line (a diagnostic, a waiting line).
pub fn line(text: &str) -> Option<Call> {
    let (time, rest) = text.split_once(' ')?;
    let at = seconds(time)?;
    let rest = rest.strip_prefix('[')?;
    let (who, rest) = rest.split_once("] ")?;
    let (bin, pid) = who.rsplit_once(' ')?;
    let pid = pid.parse().ok()?;
    let open = rest.find('(')?;
    let name = &rest[..open];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let close = closing(rest, open)?;
    let args = split_args(&rest[open + 1..close]);
    let after = rest[close + 1..].trim_start().strip_prefix("= ")?;
    let (ret, took) = match after.rsplit_once(" <") {
        Some((ret, t)) if t.ends_with('>') => (ret, Some(seconds(&t[..t.len() - 1])?)),
        _ => (after, None),
    };
    let ret = ret.trim_end_matches(" /* library call */").to_string();
    Some(Call { at, took, bin: bin.to_string(), pid, name: name.to_string(), args, ret })
}

/// `8123.456789` (seconds) in ns.
fn seconds(s: &str) -> Option<u64> {
    let (secs, frac) = s.split_once('.')?;
    if frac.len() != 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(secs.parse::<u64>().ok()? * 1_000_000_000 + frac.parse::<u64>().ok()? * 1000)
}

/// The characters of `s` outside quoted strings, each with its bracket depth before it.
fn unquoted(s: &str) -> impl Iterator<Item = (usize, char, i32)> + '_ {
    let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
    s.char_indices().filter_map(move |(i, c)| {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            return None;
        }
        let before = depth;
        match c {
            '"' => quoted = true,
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            _ => {}
        }
        Some((i, c, before))
    })
}

/// The index of the `)` that closes the `(` at `open`, past quoted strings and nested brackets.
fn closing(s: &str, open: usize) -> Option<usize> {
    unquoted(&s[open..]).find(|&(_, c, depth)| matches!(c, ')' | '}' | ']') && depth == 1).map(|(i, ..)| open + i)
}

/// Splits at the commas outside quotes and brackets.
pub fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c, depth) in unquoted(s) {
        if c == ',' && depth == 0 {
            out.push(s[start..i].trim().to_string());
            start = i + 1;
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(s[start..].trim().to_string());
    }
    out
}

/// The value of `name=` at the top level of a struct as strace prints it: `mtext` of
/// `{mtype=1, mtext="one\0"}`.
pub fn field(s: &str, name: &str) -> Option<String> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    split_args(inner).into_iter().find_map(|a| a.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
}

/// The bytes of a string as strace quotes it (`"one\0"...`): escapes undone, the `...` of a cut
/// one dropped.
pub fn unquote(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_suffix("...").unwrap_or(s);
    let body = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Vec::new();
    let mut chars = body.bytes().peekable();
    while let Some(c) = chars.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            d @ b'0'..=b'7' => {
                let mut v = u32::from(d - b'0');
                for _ in 0..2 {
                    match chars.peek() {
                        Some(&n @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(n - b'0');
                            chars.next();
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_timed_line() {
        let l = r#"11282.985531 [reader 17687] msgrcv(4128769, {mtype=1, mtext="Hello, (Queue)\0\0"...}, 8192, 1, 0) = 20 <0.302957>"#;
        let c = line(l).unwrap();
        assert_eq!((c.at, c.took), (11_282_985_531_000, Some(302_957_000)));
        assert_eq!((c.bin.as_str(), c.pid, c.name.as_str()), ("reader", 17687, "msgrcv"));
        assert_eq!(c.args.len(), 5);
        assert_eq!(field(&c.args[1], "mtype").as_deref(), Some("1"));
        assert_eq!(unquote(&field(&c.args[1], "mtext").unwrap()).unwrap(), b"Hello, (Queue)\0\0");
        assert_eq!(c.ret, "20");
        assert!(c.ok());
    }

    #[test]
    fn reads_failures_and_library_calls() {
        let l = "5.000001 [writer 3] shm_open(\"/x\", O_RDWR|O_CREAT|O_EXCL, 0600) = -1 EEXIST (File exists) /* library call */";
        let c = line(l).unwrap();
        assert_eq!(c.errno(), Some("EEXIST"));
        assert_eq!(c.took, None);
        let s = "1.000000 [reader 9] rt_sigsuspend([], 8)                    = ? ERESTARTNOHAND (To be restarted if no handler) <1.500000>";
        assert_eq!(line(s).unwrap().errno(), Some("ERESTARTNOHAND"));
        assert_eq!(line("reader: waiting on queue 0x4d2"), None);
        assert_eq!(line("[reader 1] msgget(1, 000) = 3"), None, "a line without its time");
    }

    #[test]
    fn undoes_strace_quoting() {
        assert_eq!(unquote(r#""a\"b\\c\n\1\0001""#).unwrap(), b"a\"b\\c\n\x01\x001");
        assert_eq!(unquote(r#""xyz"..."#).unwrap(), b"xyz");
    }
}
