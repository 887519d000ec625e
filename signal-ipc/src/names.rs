//! Signal names as `kill -l` prints them, parsed with or without the SIG prefix, in any case, and
//! real-time signals as RTMIN+n / RTMAX-n (nix's `Signal` knows only the standard ones).

use nix::sys::signal::Signal;

use crate::sys::{rtmax, rtmin};

/// A signal number, standard (1-31) or real-time (SIGRTMIN-SIGRTMAX).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sig(pub i32);

impl Sig {
    /// The name `kill -l` prints: SIGINT, SIGRTMIN+3, SIGRTMAX-2.
    pub fn name(self) -> String {
        let (min, max) = (rtmin(), rtmax());
        match self.0 {
            n if n == min => "SIGRTMIN".into(),
            n if n == max => "SIGRTMAX".into(),
            // kill -l counts up from RTMIN for the lower half and down from RTMAX above it.
            n if n > min && n <= min + (max - min) / 2 => format!("SIGRTMIN+{}", n - min),
            n if n > min && n < max => format!("SIGRTMAX-{}", max - n),
            n => Signal::try_from(n).map_or_else(|_| format!("signal {n}"), |s| s.as_str().to_string()),
        }
    }

    /// The standard signal, if it is one (nix's type, for sigaction and kill).
    pub fn standard(self) -> Option<Signal> {
        Signal::try_from(self.0).ok()
    }
}

impl std::fmt::Display for Sig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Every valid signal, in `kill -l` order: 1-31, then SIGRTMIN-SIGRTMAX (32 and 33 belong to glibc).
pub fn all() -> Vec<Sig> {
    (1..32).chain(rtmin()..=rtmax()).map(Sig).filter(|s| s.standard().is_some() || s.0 >= rtmin()).collect()
}

/// Parses `INT`, `SIGINT`, `sigint`, `2`, `RTMIN+3`, `SIGRTMAX-1`.
pub fn parse_signal(text: &str) -> Result<Sig, String> {
    let t = text.trim().to_ascii_uppercase();
    let bare = t.strip_prefix("SIG").unwrap_or(&t);
    let offset = |rest: &str, sign: char| -> Option<i32> {
        match rest {
            "" => Some(0),
            r => r.strip_prefix(sign)?.parse().ok(),
        }
    };
    let found = if let Ok(n) = bare.parse::<i32>() {
        Some(n)
    } else if let Some(rest) = bare.strip_prefix("RTMIN") {
        offset(rest, '+').map(|o| rtmin() + o)
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        offset(rest, '-').map(|o| rtmax() - o)
    } else {
        Signal::iterator().find(|s| &s.as_str()[3..] == bare).map(|s| s as i32)
    };
    match found {
        Some(n) if all().contains(&Sig(n)) => Ok(Sig(n)),
        _ => Err(format!(
            "unknown signal '{text}'; valid: {}, RTMIN, RTMIN+n, RTMAX-n, RTMAX (with or without SIG, any case), or a number {}-{} (see `kill -l`)",
            all().iter().filter_map(|s| s.standard()).map(|s| &s.as_str()[3..]).collect::<Vec<_>>().join(" "),
            1,
            rtmax()
        )),
    }
}

/// The table `kill -l` prints, five to a line.
pub fn kill_l() -> String {
    let cells: Vec<String> = all().iter().map(|s| format!("{:>2}) {:<12}", s.0, s.name())).collect();
    cells.chunks(5).map(|row| row.concat().trim_end().to_string() + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime() {
        assert_eq!(parse_signal("INT"), Ok(Sig(libc::SIGINT)));
        assert_eq!(parse_signal("sigusr1"), Ok(Sig(libc::SIGUSR1)));
        assert_eq!(parse_signal("15"), Ok(Sig(libc::SIGTERM)));
        assert_eq!(parse_signal("RTMIN+3"), Ok(Sig(rtmin() + 3)));
        assert_eq!(parse_signal("SIGRTMAX-1"), Ok(Sig(rtmax() - 1)));
        assert_eq!(Sig(rtmin() + 3).name(), "SIGRTMIN+3");
        assert_eq!(Sig(rtmax() - 1).name(), "SIGRTMAX-1");
        assert!(parse_signal("ALRAM").unwrap_err().contains("ALRM"), "the note's SIGALRAM is not a signal");
        assert!(parse_signal("STP").is_err(), "the note's SIGSTP is not a signal");
        assert!(parse_signal("0").is_err() && parse_signal("32").is_err() && parse_signal("65").is_err());
    }

    #[test]
    fn kill_l_lists_standard_and_realtime() {
        let table = kill_l();
        assert!(table.starts_with(" 1) SIGHUP"));
        assert!(table.contains("34) SIGRTMIN") && table.contains("64) SIGRTMAX"));
        assert!(!table.contains("32)") && !table.contains("33)"));
    }
}
