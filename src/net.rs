//! Addresses and prefixes as plain integers (IPv4 in the low 32 bits of a `u128`), so that the
//! checker, the classifier and the backends share one exact representation.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    pub fn max(self) -> u128 {
        match self {
            Family::V4 => u32::MAX as u128,
            Family::V6 => u128::MAX,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// An IP prefix with no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub family: Family,
    pub addr: u128,
    pub len: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// Not an address at all.
    Syntax,
    /// Prefix length beyond the family's width.
    Length { max: u8 },
    /// Host bits set: the suggestion is the network address.
    HostBits { network: Cidr },
}

impl Cidr {
    pub fn host(ip: IpAddr) -> Cidr {
        match ip {
            IpAddr::V4(a) => Cidr {
                family: Family::V4,
                addr: u32::from(a) as u128,
                len: 32,
            },
            IpAddr::V6(a) => Cidr {
                family: Family::V6,
                addr: u128::from(a),
                len: 128,
            },
        }
    }

    /// Parse `a.b.c.d`, `a.b.c.d/n`, or the IPv6 forms.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let (ip, len) = match text.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (text, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| CidrError::Syntax)?;
        let host = Cidr::host(ip);
        let max = host.family.bits();
        let len = match len {
            None => max,
            Some(l) => {
                if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CidrError::Syntax);
                }
                let n: u16 = l.parse().map_err(|_| CidrError::Syntax)?;
                if n > max as u16 {
                    return Err(CidrError::Length { max });
                }
                n as u8
            }
        };
        let c = Cidr {
            family: host.family,
            addr: host.addr,
            len,
        };
        let network = Cidr {
            addr: c.first(),
            ..c
        };
        if network.addr != c.addr {
            return Err(CidrError::HostBits { network });
        }
        Ok(c)
    }

    fn host_mask(&self) -> u128 {
        let bits = self.family.bits() as u32;
        let host_bits = bits - self.len as u32;
        if host_bits >= 128 {
            u128::MAX
        } else {
            ((1u128 << host_bits) - 1) & self.family.max()
        }
    }

    pub fn first(&self) -> u128 {
        self.addr & !self.host_mask() & self.family.max()
    }

    pub fn last(&self) -> u128 {
        self.first() | self.host_mask()
    }

    pub fn contains_addr(&self, family: Family, addr: u128) -> bool {
        self.family == family && self.first() <= addr && addr <= self.last()
    }

    pub fn contains(&self, other: &Cidr) -> bool {
        self.family == other.family && self.first() <= other.first() && other.last() <= self.last()
    }

    pub fn is_host(&self) -> bool {
        self.len == self.family.bits()
    }

    pub fn ip(&self) -> IpAddr {
        addr_to_ip(self.family, self.addr)
    }
}

pub fn addr_to_ip(family: Family, addr: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(addr as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(addr)),
    }
}

pub fn ip_to_addr(ip: IpAddr) -> (Family, u128) {
    let c = Cidr::host(ip);
    (c.family, c.addr)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip(), self.len)
    }
}

/// The fewest prefixes that exactly cover `lo..=hi` (both in `family`), in ascending order.
pub fn range_to_cidrs(family: Family, lo: u128, hi: u128) -> Vec<Cidr> {
    let bits = family.bits() as u32;
    let mut out = Vec::new();
    let mut cur = lo;
    loop {
        if cur > hi {
            break;
        }
        // Largest block aligned at `cur` that fits in [cur, hi].
        let mut size_bits = if cur == 0 {
            bits
        } else {
            cur.trailing_zeros().min(bits)
        };
        loop {
            let last = if size_bits >= 128 {
                u128::MAX
            } else {
                cur | ((1u128 << size_bits) - 1)
            };
            if last <= hi {
                break;
            }
            size_bits -= 1;
        }
        out.push(Cidr {
            family,
            addr: cur,
            len: (bits - size_bits) as u8,
        });
        let block_last = if size_bits >= 128 {
            u128::MAX
        } else {
            cur | ((1u128 << size_bits) - 1)
        };
        if block_last >= hi {
            break;
        }
        cur = block_last + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            Cidr::parse("198.18.0.0/15").map(|c| c.to_string()),
            Ok("198.18.0.0/15".into())
        );
        assert_eq!(Cidr::parse("2001:db8::/32").map(|c| c.len), Ok(32));
        assert_eq!(Cidr::parse("198.18.0.1").map(|c| c.len), Ok(32));
        assert!(matches!(
            Cidr::parse("198.18.0.1/15"),
            Err(CidrError::HostBits { .. })
        ));
        assert_eq!(
            Cidr::parse("198.18.0.0/33"),
            Err(CidrError::Length { max: 32 })
        );
        assert_eq!(Cidr::parse("300.1.1.1"), Err(CidrError::Syntax));
        assert_eq!(
            Cidr::parse("0.0.0.0/0").map(|c| c.last()),
            Ok(u32::MAX as u128)
        );
        assert_eq!(Cidr::parse("::/0").map(|c| c.last()), Ok(u128::MAX));
    }

    #[test]
    fn ranges_to_prefixes() {
        let v: Vec<String> = range_to_cidrs(Family::V4, 0, u32::MAX as u128)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(v, vec!["0.0.0.0/0"]);
        let a = Cidr::parse("198.18.0.0/24").map(|c| c.first()).unwrap_or(0);
        let v: Vec<String> = range_to_cidrs(Family::V4, a + 1, a + 6)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            v,
            vec![
                "198.18.0.1/32",
                "198.18.0.2/31",
                "198.18.0.4/31",
                "198.18.0.6/32"
            ]
        );
        let v = range_to_cidrs(Family::V6, 0, u128::MAX);
        assert_eq!(v.len(), 1);
    }
}
