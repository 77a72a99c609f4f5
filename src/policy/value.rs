//! Typed condition values: numbers, dates, IP ranges, binary.

use std::net::IpAddr;

use base64::Engine;

/// Parses an IAM numeric value (integer or decimal).
pub fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn num(s: &str, len: usize) -> Option<i64> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a date: epoch seconds (`1700000000`, optionally with a fraction) or the W3C profile of
/// ISO 8601 (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.s]]TZD` with `Z` or
/// `±hh:mm`). Returns milliseconds since the epoch.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let epoch_like =
        !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    // Four digits alone are an ISO year (`YYYY`); other digit strings are epoch seconds.
    if epoch_like && !(unsigned.len() == 4 && unsigned == s && !s.contains('.')) {
        let secs: f64 = s.parse().ok()?;
        return secs.is_finite().then(|| (secs * 1000.0).round() as i64);
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let year = num(parts.next()?, 4)?;
    let month = parts.next().map(|m| num(m, 2)).unwrap_or(Some(1))?;
    let day = parts.next().map(|d| num(d, 2)).unwrap_or(Some(1))?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = crate::time::days_from_civil(year, month as u32, day as u32);
    let mut millis = days * 86_400_000;
    if let Some(t) = time {
        let (clock, offset_ms) =
            if let Some(c) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
                (c, 0)
            } else if let Some(i) = t.rfind(['+', '-']).filter(|&i| i >= 5) {
                let (c, tz) = t.split_at(i);
                let sign = if tz.starts_with('-') { -1 } else { 1 };
                let (h, m) = tz
                    .get(1..)?
                    .split_once(':')
                    .unwrap_or((tz.get(1..3)?, tz.get(3..).unwrap_or("00")));
                (c, sign * (num(h, 2)? * 3_600_000 + num(m, 2)? * 60_000))
            } else {
                (t, 0)
            };
        let mut hms = clock.split(':');
        let h = num(hms.next()?, 2)?;
        let m = num(hms.next()?, 2)?;
        let (sec, frac_ms) = match hms.next() {
            None => (0, 0),
            Some(sf) => match sf.split_once('.') {
                Some((s, f)) => {
                    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let mut ms: String = f.chars().take(3).collect();
                    while ms.len() < 3 {
                        ms.push('0');
                    }
                    (num(s, 2)?, ms.parse::<i64>().ok()?)
                }
                None => (num(sf, 2)?, 0),
            },
        };
        if hms.next().is_some() || h > 24 || m > 59 || sec > 60 {
            return None;
        }
        millis += h * 3_600_000 + m * 60_000 + sec * 1000 + frac_ms - offset_ms;
    }
    Some(millis)
}

/// Decodes standard base64 (padding optional).
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
        .ok()
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (`/32`, `/128`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = s.parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is inside the network (IPv4-mapped IPv6 addresses match IPv4 networks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses a request's IP value (plain address; brackets around IPv6 tolerated).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_every_form_agree() {
        let t = parse_date("2023-01-01T00:00:00Z").unwrap();
        assert_eq!(t, 1_672_531_200_000);
        assert_eq!(parse_date("1672531200"), Some(t));
        assert_eq!(parse_date("2023-01-01"), Some(t));
        assert_eq!(parse_date("2023"), Some(t));
        assert_eq!(parse_date("2023-01"), Some(t));
        assert_eq!(parse_date("2023-01-01T01:00:00+01:00"), Some(t));
        assert_eq!(parse_date("2023-01-01T00:00Z"), Some(t));
        assert_eq!(parse_date("2023-01-01T00:00:00.500Z"), Some(t + 500));
        assert!(parse_date("yesterday").is_none());
        assert!(parse_date("2023-13-01").is_none());
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.9".parse().unwrap()));
        assert!(!c.contains("203.0.114.9".parse().unwrap()));
        assert!(c.contains("::ffff:203.0.113.9".parse().unwrap()));
        let c6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!c6.contains("203.0.113.9".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1")
            .unwrap()
            .contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("10"), Some(10.0));
        assert_eq!(parse_number("1.5"), Some(1.5));
        assert!(parse_number("ten").is_none());
        assert!(parse_number("inf").is_none());
    }
}
