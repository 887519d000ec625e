//! SysV IPC keys: parsed from decimal or 0x hex, shown as hex the way `ipcs` shows them.

use std::fmt;
use std::str::FromStr;

/// A SysV IPC key (`key_t`), never 0: 0 is IPC_PRIVATE, which makes a new object on every call,
/// so two processes could never meet on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(u32);

impl Key {
    pub const fn new(key: u32) -> Self {
        assert!(key != 0, "key 0 is IPC_PRIVATE");
        Key(key)
    }

    /// The value to hand to msgget/shmget/semget (key_t is a signed 32-bit int).
    pub fn raw(self) -> i32 {
        self.0 as i32
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl FromStr for Key {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => t.parse::<u64>(),
        };
        match parsed {
            Ok(0) => Err("0 is IPC_PRIVATE, which two processes can never share; use 1..=0xffffffff".into()),
            Ok(k) if k <= u64::from(u32::MAX) => Ok(Key(k as u32)),
            Ok(_) => Err(format!("{t} is above 0xffffffff, the largest key (key_t is 32 bits)")),
            Err(_) if t.starts_with('-') => {
                Err(format!("{t} is not a key: keys are 1..=0xffffffff (key_t is 32 bits), e.g. 1234 or 0x4d2"))
            }
            Err(_) => Err(format!("'{t}' is not a key: give a decimal number or 0x hex, e.g. 1234 or 0x4d2")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_and_hex() {
        assert_eq!("1234".parse::<Key>().unwrap(), Key(1234));
        assert_eq!("0x4d2".parse::<Key>().unwrap(), Key(1234));
        assert_eq!("0XFFFFFFFF".parse::<Key>().unwrap().raw(), -1);
        assert_eq!(Key(1234).to_string(), "0x4d2");
    }

    #[test]
    fn refuses_private_overflow_and_junk() {
        assert!("0".parse::<Key>().unwrap_err().contains("IPC_PRIVATE"));
        assert!("0x100000000".parse::<Key>().unwrap_err().contains("above"));
        assert!("-1".parse::<Key>().is_err());
        assert!("twelve".parse::<Key>().unwrap_err().contains("not a key"));
    }
}
