//! Crafted probe packets and what comes back. Every probe is one packet built here, IP header
//! included, sent from a raw socket inside its source endpoint: a TCP SYN, a UDP datagram, an
//! SCTP INIT, an ICMP or ICMPv6 message of any type, or a bare packet of any other IP protocol.
//! Each carries the probe's number, so the raw sockets inside the destination (which see a
//! packet after the namespace's input hook) and the source (which sees the answer of the
//! destination's kernel) know which probe they saw. Pure: no system calls.
//!
//! Conntrack sees these packets as the kernel would see a real client's: a SYN without ACK, an
//! SCTP INIT with verification tag 0, ICMP requests are new connections; ICMP replies and errors
//! that belong to no connection are invalid. Checksums are right (conntrack checks them).

use std::net::IpAddr;

/// Marks a probe's payload.
pub const MAGIC: [u8; 4] = *b"gbpc";

/// IP protocol numbers.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const SCTP: u8 = 132;
pub const ICMP: u8 = 1;
pub const ICMPV6: u8 = 58;

/// The ICMP identifier of a probe (part of conntrack's key for ICMP): different for each
/// attempt, and with the top bit set for every type that is not a request, so that a probe of
/// a reply type can never be taken for the reply of an earlier request probe.
fn icmp_ident(id: u32, attempt: u8, ty: u8) -> u16 {
    let request = matches!(ty, 8 | 13 | 15 | 17 | 128 | 139);
    (id as u16 & 0x3fff) | u16::from(attempt & 1) << 14 | u16::from(!request) << 15
}

/// The checksum of RFC 1071 over `data`, starting from `sum`.
fn fold(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

fn finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut sum = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = fold(sum, &s.octets());
            sum = fold(sum, &d.octets());
        }
        (s, d) => {
            sum = fold(sum, &ip_bytes(s));
            sum = fold(sum, &ip_bytes(d));
        }
    }
    sum + u32::from(proto) + len as u32
}

fn ip_bytes(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// CRC32c (Castagnoli), as SCTP's checksum.
pub fn crc32c(data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    }
    static T: [u32; 256] = table();
    let mut c = !0u32;
    for &b in data {
        c = T[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Append the probe packet (IP header included) for probe `id`: protocol `proto` (an IP
/// protocol number) to port or ICMP type `port` from `src` to `dst` (one family), from source
/// port `sport` (TCP, UDP, SCTP).
#[allow(clippy::too_many_arguments)]
pub fn build(
    out: &mut Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    port: u16,
    sport: u16,
    id: u32,
    attempt: u8,
) {
    // The IP header first (its length fields are filled in once the rest is written), then
    // the transport header and payload, then the checksum over them.
    let start = out.len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // Version 4, 20 bytes; the kernel fills in the identification and the checksum.
            out.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            // Neighbour discovery as it is sent on a link: hop limit 255.
            let nd = proto == ICMPV6 && (133..=137).contains(&port);
            let hops = if nd { 255 } else { 64 };
            out.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, proto, hops]);
            out.extend_from_slice(&ip_bytes(s));
            out.extend_from_slice(&ip_bytes(d));
        }
    }
    let at = out.len();
    match proto {
        TCP => {
            out.extend_from_slice(&sport.to_be_bytes());
            out.extend_from_slice(&port.to_be_bytes());
            out.extend_from_slice(&id.to_be_bytes()); // sequence number
            out.extend_from_slice(&0u32.to_be_bytes()); // acknowledgement
            out.extend_from_slice(&[5 << 4, 0x02]); // 20-byte header, SYN
            out.extend_from_slice(&64_240u16.to_be_bytes()); // window
            out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        }
        UDP => {
            out.extend_from_slice(&sport.to_be_bytes());
            out.extend_from_slice(&port.to_be_bytes());
            out.extend_from_slice(&16u16.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&id.to_be_bytes());
        }
        SCTP => {
            out.extend_from_slice(&sport.to_be_bytes());
            out.extend_from_slice(&port.to_be_bytes());
            out.extend_from_slice(&[0; 8]); // verification tag 0 (an INIT), checksum
            out.extend_from_slice(&[1, 0]); // INIT, no flags
            out.extend_from_slice(&20u16.to_be_bytes());
            out.extend_from_slice(&MAGIC); // initiate tag (not 0)
            out.extend_from_slice(&65_535u32.to_be_bytes()); // receiver window
            out.extend_from_slice(&1u16.to_be_bytes()); // outbound streams
            out.extend_from_slice(&1u16.to_be_bytes()); // inbound streams
            out.extend_from_slice(&id.to_be_bytes()); // initial TSN
        }
        ICMP | ICMPV6 => {
            // type, code 0, checksum, identifier and sequence, then the mark and the number:
            // 20 bytes, the size of a timestamp request.
            out.extend_from_slice(&[port as u8, 0, 0, 0]);
            out.extend_from_slice(&icmp_ident(id, attempt, port as u8).to_be_bytes());
            out.extend_from_slice(&((id >> 16) as u16).to_be_bytes());
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&[0; 4]);
        }
        _ => {
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&[0; 8]);
        }
    }
    let len = out.len() - at;
    if src.is_ipv4() {
        out[start + 2..start + 4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
    } else {
        out[start + 4..start + 6].copy_from_slice(&(len as u16).to_be_bytes());
    }
    let l4 = &mut out[at..];
    match proto {
        TCP => {
            let c = finish(fold(pseudo(src, dst, TCP, len), l4));
            l4[16..18].copy_from_slice(&c.to_be_bytes());
        }
        UDP => {
            let c = match finish(fold(pseudo(src, dst, UDP, len), l4)) {
                0 => 0xffff,
                c => c,
            };
            l4[6..8].copy_from_slice(&c.to_be_bytes());
        }
        SCTP => {
            let c = crc32c(l4);
            l4[8..12].copy_from_slice(&c.to_le_bytes());
        }
        ICMP => {
            let c = finish(fold(0, l4));
            l4[2..4].copy_from_slice(&c.to_be_bytes());
        }
        ICMPV6 => {
            let c = finish(fold(pseudo(src, dst, ICMPV6, len), l4));
            l4[2..4].copy_from_slice(&c.to_be_bytes());
        }
        _ => {}
    }
}

/// A probe packet, or the answer to one, as a raw socket saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A probe packet: its number, protocol and port (or ICMP type).
    Probe { id: u32, proto: u8, port: u16 },
    /// The answer of the destination's kernel to probe `id` of protocol `proto`: a TCP
    /// SYN-ACK or reset, or the ICMP port unreachable of a UDP probe. (An ICMP echo reply
    /// carries the probe's payload and reads as a [`Seen::Probe`] of the reply's type.)
    Answer { id: u32, proto: u8 },
    /// An ICMP error other than port unreachable about probe `id` (no route, prohibited).
    Error { id: u32 },
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

fn marked(b: &[u8], at: usize) -> Option<u32> {
    (b.get(at..at + 4)? == MAGIC).then(|| be32(b, at + 4))?
}

/// The UDP probe inside an ICMP error's quoted packet (`q` starts at the quoted IP header).
fn quoted_udp(q: &[u8], v6: bool) -> Option<u32> {
    let (proto, hlen) = if v6 {
        (*q.get(6)?, 40)
    } else {
        (*q.get(9)?, usize::from(q.first()? & 0x0f) * 4)
    };
    if proto != UDP {
        return None;
    }
    marked(q, hlen + 8)
}

/// Read a packet from a raw socket of protocol `proto`: with its IPv4 header (`v6 == false`),
/// or from its transport header (IPv6 raw sockets). Returns the packet's source address (for
/// IPv4, read from the header) as well.
pub fn parse(data: &[u8], v6: bool, proto: u8) -> Option<(Seen, Option<IpAddr>)> {
    let (l4, src) = if v6 {
        (data, None)
    } else {
        let ihl = usize::from(data.first()? & 0x0f) * 4;
        let s = data.get(12..16)?;
        (
            data.get(ihl..)?,
            Some(IpAddr::from([s[0], s[1], s[2], s[3]])),
        )
    };
    let seen = match proto {
        TCP => {
            let flags = *l4.get(13)?;
            let (syn, ack, rst) = (flags & 0x02 != 0, flags & 0x10 != 0, flags & 0x04 != 0);
            if syn && !ack {
                Seen::Probe {
                    id: be32(l4, 4)?,
                    proto,
                    port: be16(l4, 2)?,
                }
            } else if ack && (syn || rst) {
                Seen::Answer {
                    id: be32(l4, 8)?.wrapping_sub(1),
                    proto,
                }
            } else {
                return None;
            }
        }
        UDP => Seen::Probe {
            id: marked(l4, 8)?,
            proto,
            port: be16(l4, 2)?,
        },
        SCTP => {
            if *l4.get(12)? != 1 {
                return None;
            }
            Seen::Probe {
                id: be32(l4, 28)?,
                proto,
                port: be16(l4, 2)?,
            }
        }
        ICMP | ICMPV6 => {
            let ty = *l4.first()?;
            if let Some(id) = marked(l4, 8) {
                // A probe of this type, or the echo reply of one (the engine tells which).
                return Some((
                    Seen::Probe {
                        id,
                        proto,
                        port: u16::from(ty),
                    },
                    src,
                ));
            }
            let code = *l4.get(1)?;
            let error = if v6 {
                ty < 128
            } else {
                matches!(ty, 3 | 4 | 5 | 11 | 12)
            };
            if !error {
                return None;
            }
            let id = quoted_udp(l4.get(8..)?, v6)?;
            let port_unreachable = if v6 {
                ty == 1 && code == 4
            } else {
                ty == 3 && code == 3
            };
            if port_unreachable {
                Seen::Answer { id, proto: UDP }
            } else {
                Seen::Error { id }
            }
        }
        _ => Seen::Probe {
            id: marked(l4, 0)?,
            proto,
            port: 0,
        },
    };
    Some((seen, src))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_of_the_standard_vector() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    fn valid_checksum(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> bool {
        match proto {
            ICMP => finish(fold(0, l4)) == 0,
            SCTP => {
                let mut z = l4.to_vec();
                z[8..12].copy_from_slice(&[0; 4]);
                crc32c(&z).to_le_bytes() == l4[8..12]
            }
            TCP | UDP | ICMPV6 => finish(fold(pseudo(src, dst, proto, l4.len()), l4)) == 0,
            // Other protocols carry no checksum of gbpc's.
            _ => true,
        }
    }

    #[test]
    fn every_probe_reads_back_with_its_number_and_a_valid_checksum() {
        let pairs: [(IpAddr, IpAddr); 2] = [
            ([198, 18, 0, 1].into(), [198, 18, 0, 2].into()),
            (
                "2001:db8::1".parse().unwrap_or(IpAddr::from([0u8; 16])),
                "2001:db8::2".parse().unwrap_or(IpAddr::from([0u8; 16])),
            ),
        ];
        for (src, dst) in pairs {
            let v6 = src.is_ipv6();
            let icmp = if v6 { ICMPV6 } else { ICMP };
            for (proto, port) in [
                (TCP, 0u16),
                (TCP, 65535),
                (UDP, 53),
                (SCTP, 9),
                (icmp, 8),
                (icmp, 13),
                (icmp, 0),
                (icmp, 139),
                (47, 0),
                (253, 0),
            ] {
                for id in [0u32, 1, 0x1234_5678, u32::MAX] {
                    let mut buf = Vec::new();
                    build(&mut buf, src, dst, proto, port, 40_001, id, 1);
                    let hlen = if v6 { 40 } else { 20 };
                    assert!(
                        valid_checksum(src, dst, proto, &buf[hlen..]),
                        "{proto}/{port}"
                    );
                    // IPv6 raw sockets start at the transport header.
                    let data = if v6 { &buf[40..] } else { &buf[..] };
                    let (seen, from) = parse(data, v6, proto)
                        .unwrap_or_else(|| unreachable!("{proto}/{port} #{id} does not read back"));
                    let want_port = if proto == 47 || proto == 253 { 0 } else { port };
                    assert_eq!(
                        seen,
                        Seen::Probe {
                            id,
                            proto,
                            port: want_port
                        }
                    );
                    assert_eq!(from, (!v6).then_some(src));
                }
            }
        }
    }

    #[test]
    fn answers_name_their_probe() {
        // A SYN-ACK acknowledges the probe's sequence number plus one.
        let mut synack = vec![0u8; 20];
        synack[8..12].copy_from_slice(&0x0000_1000u32.to_be_bytes());
        synack[13] = 0x12;
        assert_eq!(
            parse(&synack, true, TCP).map(|x| x.0),
            Some(Seen::Answer {
                id: 0x0fff,
                proto: TCP
            })
        );
        // A port unreachable quotes the UDP probe.
        let mut probe = Vec::new();
        build(
            &mut probe,
            [198, 18, 0, 1].into(),
            [198, 18, 0, 2].into(),
            UDP,
            53,
            40_001,
            77,
            0,
        );
        let mut err = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, ICMP, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1,
        ];
        err.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
        err.extend_from_slice(&probe);
        assert_eq!(
            parse(&err, false, ICMP).map(|x| x.0),
            Some(Seen::Answer { id: 77, proto: UDP })
        );
        err[20] = 3;
        err[21] = 1; // host unreachable
        assert_eq!(
            parse(&err, false, ICMP).map(|x| x.0),
            Some(Seen::Error { id: 77 })
        );
        // A bare TCP ACK is neither.
        let mut ack = vec![0u8; 20];
        ack[13] = 0x10;
        assert_eq!(parse(&ack, true, TCP), None);
    }
}
