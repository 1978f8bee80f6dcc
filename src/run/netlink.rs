//! Just enough netlink for a run. Route netlink wires the routed fabric: veth pairs (the peer
//! created straight inside an endpoint's network namespace), links up, addresses, routes and
//! permanent neighbour entries, requests sent in batches and acknowledged together. Netfilter
//! netlink asks the kernel's own set lookup which element of a loaded map holds an address (the
//! classification check). A socket works in the network namespace it was opened in, so one
//! process configures and checks every namespace.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendto,
    socket,
};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_NEWNEIGH: u16 = 28;
const NLM_F_REPLACE: u16 = 0x100;
const IFLA_ADDRESS: u16 = 1;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_PERMANENT: u16 = 0x80;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const RTNH_F_ONLINK: u32 = 4;
const IFF_UP: u32 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// A netlink message under construction (without its 16-byte header).
struct Msg(Vec<u8>);

impl Msg {
    fn new(fixed: &[u8]) -> Msg {
        Msg(fixed.to_vec())
    }

    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        self.pad();
        self.0
            .extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.pad();
    }

    fn nest(&mut self, ty: u16, fill: impl FnOnce(&mut Msg)) {
        self.pad();
        let at = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&ty.to_ne_bytes());
        fill(self);
        let len = (self.0.len() - at) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self.pad();
    }
}

fn ifinfo(index: i32, up: bool) -> Vec<u8> {
    let mut v = vec![0u8, 0, 0, 0];
    v.extend_from_slice(&index.to_ne_bytes());
    let flags = if up { IFF_UP } else { 0 };
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&IFF_UP.to_ne_bytes());
    v
}

fn ip_bytes(ip: IpAddr) -> (u8, Vec<u8>) {
    match ip {
        IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
    }
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A route netlink socket of the namespace it was opened in.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    queue: Vec<u8>,
    pending: usize,
}

/// Append one netlink message.
fn push_message(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, payload: &[u8]) {
    let len = (16 + payload.len()) as u32;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(payload);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The messages of a datagram: (type, sequence number, payload).
fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let h = buf.get(at..at + 16)?;
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len < 16 || at + len > buf.len() {
            return None;
        }
        let ty = u16::from_ne_bytes([h[4], h[5]]);
        let seq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        let payload = &buf[at + 16..at + len];
        at += (len + 3) & !3;
        Some((ty, seq, payload))
    })
}

/// The attributes of a netlink payload: (type without flags, data).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some((ty, data))
    })
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        let _ =
            nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::RcvBufForce, &(4 << 20));
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; 1 << 16],
            queue: Vec::new(),
            pending: 0,
        })
    }

    /// Queue one request (acknowledged at the next [`Netlink::flush`]).
    fn call(&mut self, ty: u16, flags: u16, msg: Msg) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        push_message(
            &mut self.queue,
            ty,
            flags | NLM_F_REQUEST | NLM_F_ACK,
            self.seq,
            &msg.0,
        );
        self.pending += 1;
        if self.queue.len() > 48 * 1024 {
            self.flush()?;
        }
        Ok(())
    }

    /// Send the queued requests at once and wait for every acknowledgement: the first error.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let out = std::mem::take(&mut self.queue);
        let mut waiting = std::mem::take(&mut self.pending);
        sendto(
            self.fd.as_raw_fd(),
            &out,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let mut first_error: Option<io::Error> = None;
        while waiting > 0 {
            let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty())?;
            for (ty, _, payload) in messages(&self.buf[..n]) {
                if ty == NLMSG_ERROR && payload.len() >= 4 {
                    waiting = waiting.saturating_sub(1);
                    let err = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    if err != 0 && first_error.is_none() {
                        first_error = Some(io::Error::from_raw_os_error(-err));
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A veth pair, both ends down: `name` with interface index `index` and hardware address
    /// `mac` here, `peer` (`peer_index`, `peer_mac`) inside the namespace `peer_ns`. Fixed
    /// indexes that differ between the ends keep the kernel's link-state work for the pair
    /// urgent (an end whose index equals its peer's waits up to a second for its queue).
    #[allow(clippy::too_many_arguments)]
    pub fn veth(
        &mut self,
        name: &str,
        index: u32,
        mac: [u8; 6],
        peer: &str,
        peer_index: u32,
        peer_mac: [u8; 6],
        peer_ns: BorrowedFd,
    ) -> io::Result<()> {
        let mut m = Msg::new(&ifinfo(index as i32, false));
        m.attr(IFLA_IFNAME, &cstr(name));
        m.attr(IFLA_ADDRESS, &mac);
        m.nest(IFLA_LINKINFO, |m| {
            m.attr(IFLA_INFO_KIND, b"veth");
            m.nest(IFLA_INFO_DATA, |m| {
                m.nest(VETH_INFO_PEER, |m| {
                    m.0.extend_from_slice(&ifinfo(peer_index as i32, false));
                    m.attr(IFLA_IFNAME, &cstr(peer));
                    m.attr(IFLA_ADDRESS, &peer_mac);
                    m.attr(IFLA_NET_NS_FD, &(peer_ns.as_raw_fd() as u32).to_ne_bytes());
                });
            });
        });
        self.call(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, m)
    }

    pub fn link_up(&mut self, index: u32) -> io::Result<()> {
        self.call(RTM_NEWLINK, 0, Msg::new(&ifinfo(index as i32, true)))
    }

    /// An address (IPv6 without duplicate address detection).
    pub fn addr(&mut self, index: u32, ip: IpAddr, prefix: u8) -> io::Result<()> {
        let (family, bytes) = ip_bytes(ip);
        let flags = if family == AF_INET6 { IFA_F_NODAD } else { 0 };
        let mut fixed = vec![family, prefix, flags, 0];
        fixed.extend_from_slice(&index.to_ne_bytes());
        let mut m = Msg::new(&fixed);
        m.attr(IFA_LOCAL, &bytes);
        m.attr(IFA_ADDRESS, &bytes);
        self.call(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, m)
    }

    /// A route to `dst/len` out of `oif`, through `gateway` if given (`onlink`: the gateway
    /// needs no route of its own).
    pub fn route(
        &mut self,
        dst: IpAddr,
        len: u8,
        oif: u32,
        gateway: Option<IpAddr>,
        onlink: bool,
    ) -> io::Result<()> {
        let (family, bytes) = ip_bytes(dst);
        let scope = if gateway.is_some() { 0 } else { RT_SCOPE_LINK };
        let mut fixed = vec![
            family,
            len,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            scope,
            RTN_UNICAST,
        ];
        let flags = if onlink { RTNH_F_ONLINK } else { 0 };
        fixed.extend_from_slice(&flags.to_ne_bytes());
        let mut m = Msg::new(&fixed);
        if len > 0 {
            m.attr(RTA_DST, &bytes);
        }
        if let Some(g) = gateway {
            m.attr(RTA_GATEWAY, &ip_bytes(g).1);
        }
        m.attr(RTA_OIF, &oif.to_ne_bytes());
        self.call(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, m)
    }

    /// A permanent neighbour entry: `ip` is at `mac` on interface `index` (no ARP or neighbour
    /// discovery, so no lost first request can delay a run by a retransmission second).
    pub fn neigh(&mut self, index: u32, ip: IpAddr, mac: [u8; 6]) -> io::Result<()> {
        let (family, bytes) = ip_bytes(ip);
        let mut fixed = vec![family, 0, 0, 0];
        fixed.extend_from_slice(&(index as i32).to_ne_bytes());
        fixed.extend_from_slice(&NUD_PERMANENT.to_ne_bytes());
        fixed.extend_from_slice(&[0, 0]);
        let mut m = Msg::new(&fixed);
        m.attr(NDA_DST, &bytes);
        m.attr(NDA_LLADDR, &mac);
        self.call(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, m)
    }
}

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFPROTO_INET: u8 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// A netfilter netlink socket of the namespace it was opened in.
pub struct NfNetlink {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl NfNetlink {
    pub fn open() -> io::Result<NfNetlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        let _ =
            nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::RcvBufForce, &(8 << 20));
        Ok(NfNetlink {
            fd,
            buf: vec![0; 1 << 16],
        })
    }

    /// The value (a mark) of the element of map `set` in table `inet table` that holds each
    /// address, as the kernel's set lookup finds it; `None` where no element holds it.
    pub fn map_lookup(
        &mut self,
        table: &str,
        set: &str,
        keys: &[IpAddr],
    ) -> io::Result<Vec<Option<u32>>> {
        let mut out = vec![None; keys.len()];
        for (chunk_no, chunk) in keys.chunks(256).enumerate() {
            let mut req = Vec::new();
            for (k, key) in chunk.iter().enumerate() {
                let mut m = Msg::new(&[NFPROTO_INET, 0, 0, 0]);
                m.attr(NFTA_SET_ELEM_LIST_TABLE, &cstr(table));
                m.attr(NFTA_SET_ELEM_LIST_SET, &cstr(set));
                m.nest(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, |m| {
                    m.nest(NFTA_LIST_ELEM | NLA_F_NESTED, |m| {
                        m.nest(NFTA_SET_ELEM_KEY | NLA_F_NESTED, |m| {
                            m.attr(NFTA_DATA_VALUE, &ip_bytes(*key).1);
                        });
                    });
                });
                push_message(
                    &mut req,
                    NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETSETELEM,
                    NLM_F_REQUEST | NLM_F_ACK,
                    k as u32,
                    &m.0,
                );
            }
            sendto(
                self.fd.as_raw_fd(),
                &req,
                &NetlinkAddr::new(0, 0),
                MsgFlags::empty(),
            )?;
            let base = chunk_no * 256;
            let mut waiting = chunk.len();
            while waiting > 0 {
                let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty())?;
                for (ty, seq, payload) in messages(&self.buf[..n]) {
                    let k = seq as usize;
                    if ty == NLMSG_ERROR {
                        // The acknowledgement (or ENOENT: no element holds the key).
                        waiting = waiting.saturating_sub(1);
                        let err = payload
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        if err != 0 && err != -(nix::libc::ENOENT) {
                            return Err(io::Error::from_raw_os_error(-err));
                        }
                    } else if ty == NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM
                        && let Some(slot) = out.get_mut(base + k)
                    {
                        *slot = element_value(payload.get(4..).unwrap_or(&[]));
                    }
                }
            }
        }
        Ok(out)
    }
}

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;

impl NfNetlink {
    /// Forget every connection conntrack tracks in this namespace (`conntrack -F`).
    pub fn flush_conntrack(&mut self) -> io::Result<()> {
        let mut req = Vec::new();
        push_message(
            &mut req,
            NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            1,
            &[0, 0, 0, 0],
        );
        sendto(
            self.fd.as_raw_fd(),
            &req,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty())?;
            for (ty, _, payload) in messages(&self.buf[..n]) {
                if ty == NLMSG_ERROR {
                    let err = payload
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    return if err == 0 || err == -(nix::libc::ENOENT) {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-err))
                    };
                }
            }
        }
    }
}

/// The 32-bit value of the first element of a NEWSETELEM payload (after its nfgenmsg).
fn element_value(payload: &[u8]) -> Option<u32> {
    let (_, elements) = attrs(payload).find(|(t, _)| *t == NFTA_SET_ELEM_LIST_ELEMENTS)?;
    let (_, elem) = attrs(elements).find(|(t, _)| *t == NFTA_LIST_ELEM)?;
    let (_, data) = attrs(elem).find(|(t, _)| *t == NFTA_SET_ELEM_DATA)?;
    let (_, value) = attrs(data).find(|(t, _)| *t == NFTA_DATA_VALUE)?;
    let b = value.get(..4)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// A loaded nftables table as the kernel dumps it, turned into one batch of creation
/// requests that builds the same table in another namespace (per-endpoint enforcement: `nft`
/// parses and loads the script once; every other endpoint gets the kernel's own objects).
pub struct TableCopy {
    /// The batch's messages, without their sequence numbers' meaning (fresh ones are set
    /// when it is sent).
    batch: Vec<u8>,
    messages: usize,
}

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_NEWOBJ: u16 = 18;
const NFT_MSG_GETOBJ: u16 = 19;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NLMSG_DONE: u16 = 3;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_APPEND: u16 = 0x800;

/// The attributes of a dump that a creation request takes (not handles, use counts, ids, nor
/// what newer kernels report only: a set's backend and element count).
fn keep_top(msg: u16, attr: u16) -> bool {
    match msg {
        NFT_MSG_NEWTABLE => matches!(attr, 1 | 2 | 6),
        NFT_MSG_NEWCHAIN => matches!(attr, 1 | 3 | 4 | 5 | 7 | 10 | 12),
        NFT_MSG_NEWOBJ => matches!(attr, 1..=4 | 8),
        NFT_MSG_NEWSET => matches!(attr, 1..=9 | 11 | 12 | 13 | 15 | 17 | 18),
        NFT_MSG_NEWRULE => matches!(attr, 1 | 2 | 4 | 5 | 7),
        _ => false,
    }
}

/// Copy the attributes of `payload` (after its nfgenmsg) that `keep` allows.
fn filtered(payload: &[u8], keep: impl Fn(u16) -> bool) -> Vec<u8> {
    let mut out = payload.get(..4).unwrap_or(&[0; 4]).to_vec();
    let mut b = payload.get(4..).unwrap_or(&[]);
    while b.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        let padded = ((len + 3) & !3).min(b.len());
        if keep(ty) {
            out.extend_from_slice(&b[..padded]);
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
        }
        b = &b[padded..];
    }
    out
}

/// A set element list without the elements' expiration times.
fn elements_without_expiration(payload: &[u8]) -> Vec<u8> {
    let mut m = Msg::new(payload.get(..4).unwrap_or(&[0; 4]));
    for (ty, data) in attrs(payload.get(4..).unwrap_or(&[])) {
        if ty != NFTA_SET_ELEM_LIST_ELEMENTS {
            m.attr(ty, data);
            continue;
        }
        m.nest(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, |m| {
            for (ety, elem) in attrs(data) {
                m.nest(ety | NLA_F_NESTED, |m| {
                    for (aty, a) in attrs(elem) {
                        // Key, data, flags, user data, expressions, object, key end: not the
                        // kernel's bookkeeping (timeout, expiration, padding, newer ones).
                        if !matches!(aty, 1 | 2 | 3 | 6 | 7 | 9 | 10 | 11) {
                            continue;
                        }
                        let nested = matches!(aty, 1 | 2 | 7 | 10 | 11);
                        m.attr(if nested { aty | NLA_F_NESTED } else { aty }, a);
                    }
                });
            }
        });
    }
    m.0
}

impl NfNetlink {
    /// Run a dump request; every message's payload.
    fn dump(
        &mut self,
        ty: u16,
        table: &str,
        extra: &[(u16, &str)],
        attr_table: u16,
    ) -> io::Result<Vec<Vec<u8>>> {
        let mut m = Msg::new(&[NFPROTO_INET, 0, 0, 0]);
        m.attr(attr_table, &cstr(table));
        for (a, v) in extra {
            m.attr(*a, &cstr(v));
        }
        let mut req = Vec::new();
        push_message(
            &mut req,
            NFNL_SUBSYS_NFTABLES << 8 | ty,
            NLM_F_REQUEST | NLM_F_DUMP,
            7,
            &m.0,
        );
        sendto(
            self.fd.as_raw_fd(),
            &req,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let mut out = Vec::new();
        let mut big = vec![0u8; 1 << 20];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut big, MsgFlags::empty())?;
            for (mty, _, payload) in messages(&big[..n]) {
                match mty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let err = payload
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        return if err == 0 {
                            Ok(out)
                        } else {
                            Err(io::Error::from_raw_os_error(-err))
                        };
                    }
                    _ => out.push(payload.to_vec()),
                }
            }
        }
    }

    /// The table `inet table` of this namespace, as a batch that creates it elsewhere.
    pub fn copy_table(&mut self, table: &str) -> io::Result<TableCopy> {
        let name_of = |payload: &[u8], attr: u16| -> Option<String> {
            attrs(payload.get(4..)?)
                .find(|(t, _)| *t == attr)
                .map(|(_, v)| {
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string()
                })
        };
        // (message type, flags, payload) in creation order.
        let mut parts: Vec<(u16, u16, Vec<u8>)> = Vec::new();
        let tables = self.dump(NFT_MSG_GETTABLE, table, &[], 1)?;
        let Some(t) = tables
            .iter()
            .find(|p| name_of(p, 1).as_deref() == Some(table))
        else {
            return Err(io::Error::other(format!("no table inet {table}")));
        };
        parts.push((
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            filtered(t, |a| keep_top(NFT_MSG_NEWTABLE, a)),
        ));
        let mine = |p: &Vec<u8>, attr: u16| name_of(p, attr).as_deref() == Some(table);
        for o in self.dump(NFT_MSG_GETOBJ, table, &[], 1)? {
            if mine(&o, 1) {
                parts.push((
                    NFT_MSG_NEWOBJ,
                    NLM_F_CREATE,
                    filtered(&o, |a| keep_top(NFT_MSG_NEWOBJ, a)),
                ));
            }
        }
        for c in self.dump(NFT_MSG_GETCHAIN, table, &[], 1)? {
            if mine(&c, 1) {
                parts.push((
                    NFT_MSG_NEWCHAIN,
                    NLM_F_CREATE,
                    filtered(&c, |a| keep_top(NFT_MSG_NEWCHAIN, a)),
                ));
            }
        }
        let sets = self.dump(NFT_MSG_GETSET, table, &[], 1)?;
        let mut names = Vec::new();
        for s in &sets {
            if mine(s, 1) {
                // A creation request needs a set id (unique in the transaction).
                let mut m = Msg(filtered(s, |a| keep_top(NFT_MSG_NEWSET, a)));
                m.attr(10, &(names.len() as u32 + 1).to_be_bytes());
                parts.push((NFT_MSG_NEWSET, NLM_F_CREATE, m.0));
                names.extend(name_of(s, 2));
            }
        }
        for set in &names {
            let dumped = self.dump(
                NFT_MSG_GETSETELEM,
                table,
                &[(NFTA_SET_ELEM_LIST_SET, set)],
                NFTA_SET_ELEM_LIST_TABLE,
            )?;
            for e in dumped {
                parts.push((
                    NFT_MSG_NEWSETELEM,
                    NLM_F_CREATE,
                    elements_without_expiration(&e),
                ));
            }
        }
        for r in self.dump(NFT_MSG_GETRULE, table, &[], 1)? {
            if mine(&r, 1) {
                parts.push((
                    NFT_MSG_NEWRULE,
                    NLM_F_CREATE | NLM_F_APPEND,
                    filtered(&r, |a| keep_top(NFT_MSG_NEWRULE, a)),
                ));
            }
        }
        let mut batch = Vec::new();
        let res_id = NFNL_SUBSYS_NFTABLES.to_be_bytes();
        push_message(
            &mut batch,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            0,
            &[0, 0, res_id[0], res_id[1]],
        );
        for (k, (ty, flags, payload)) in parts.iter().enumerate() {
            push_message(
                &mut batch,
                NFNL_SUBSYS_NFTABLES << 8 | ty,
                NLM_F_REQUEST | NLM_F_ACK | flags,
                k as u32 + 1,
                payload,
            );
        }
        push_message(
            &mut batch,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            parts.len() as u32 + 1,
            &[0, 0, res_id[0], res_id[1]],
        );
        Ok(TableCopy {
            batch,
            messages: parts.len(),
        })
    }

    /// Create the copied table in this namespace (one transaction: all or nothing).
    pub fn load_copy(&mut self, copy: &TableCopy) -> io::Result<()> {
        let _ = nix::sys::socket::setsockopt(
            &self.fd,
            nix::sys::socket::sockopt::SndBufForce,
            &(copy.batch.len() + (1 << 16)),
        );
        sendto(
            self.fd.as_raw_fd(),
            &copy.batch,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let mut waiting = copy.messages;
        let mut big = vec![0u8; 1 << 20];
        while waiting > 0 {
            let n = recv(self.fd.as_raw_fd(), &mut big, MsgFlags::empty())?;
            for (ty, _, payload) in messages(&big[..n]) {
                if ty == NLMSG_ERROR {
                    waiting = waiting.saturating_sub(1);
                    let err = payload
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if err != 0 {
                        // The request it answers: its type and number in the batch.
                        let ty = payload
                            .get(8..10)
                            .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
                        let seq = payload
                            .get(12..16)
                            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        let e = io::Error::from_raw_os_error(-err);
                        return Err(io::Error::other(format!(
                            "request {seq} of {} (type {}): {e}",
                            copy.messages,
                            ty & 0xff
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}
