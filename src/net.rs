//! Small network helpers for the request path.

use std::fmt::Write as _;
use std::net::IpAddr;

/// An IP address as text, formatted without allocating (`Display` through `core::fmt` costs
/// more than the rest of building the request context; the request path formats the client
/// address for `aws:SourceIp` and `X-Forwarded-For` on every call).
#[derive(Clone, Copy)]
pub struct IpText {
    buf: [u8; 46],
    len: u8,
}

impl IpText {
    /// `ip` in its usual text form (`Display`'s: dotted quad, or RFC 5952 for IPv6).
    pub fn new(ip: IpAddr) -> Self {
        let mut out = Self {
            buf: [0; 46],
            len: 0,
        };
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    if octet >= 100 {
                        out.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        out.push(b'0' + octet / 10 % 10);
                    }
                    out.push(b'0' + octet % 10);
                }
            }
            // IPv6 is rare here; `Display` implements RFC 5952's compression.
            IpAddr::V6(v6) => {
                let _ = write!(out, "{v6}");
            }
        }
        out
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or(&[]);
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = usize::from(self.len) + s.len();
        let slot = self
            .buf
            .get_mut(usize::from(self.len)..end)
            .ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = u8::try_from(end).map_err(|_| std::fmt::Error)?;
        Ok(())
    }
}

impl std::fmt::Debug for IpText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_like_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "255.255.255.255",
            "::1",
            "::",
            "2001:db8::8a2e:370:7334",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:192.168.1.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(IpText::new(ip).as_str(), ip.to_string());
        }
    }

    proptest! {
        #[test]
        fn any_v4_formats_like_display(bits: u32) {
            let ip = IpAddr::V4(bits.into());
            let text = IpText::new(ip);
            prop_assert_eq!(text.as_str(), ip.to_string());
        }

        #[test]
        fn any_v6_formats_like_display(bits: u128) {
            let ip = IpAddr::V6(bits.into());
            let text = IpText::new(ip);
            prop_assert_eq!(text.as_str(), ip.to_string());
        }
    }
}
