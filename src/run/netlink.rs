//! Just enough rtnetlink to wire a routed fabric: veth pairs (the peer created straight inside
//! an endpoint's network namespace), links up, addresses, routes. A socket works in the
//! network namespace it was opened in, so one process configures every namespace.

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
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; 65536],
        })
    }

    /// Send one request and wait for its acknowledgement.
    fn call(&mut self, ty: u16, flags: u16, msg: Msg) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let len = (16 + msg.0.len()) as u32;
        let mut out = Vec::with_capacity(len as usize);
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&msg.0);
        sendto(
            self.fd.as_raw_fd(),
            &out,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty())?;
            let mut at = 0;
            while at + 16 <= n {
                let word = |o: usize| {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&self.buf[o..o + 4]);
                    b
                };
                let mlen = u32::from_ne_bytes(word(at)) as usize;
                let mty = u16::from_ne_bytes([self.buf[at + 4], self.buf[at + 5]]);
                let mseq = u32::from_ne_bytes(word(at + 8));
                if mlen < 16 {
                    break;
                }
                if mty == NLMSG_ERROR && mseq == self.seq && at + 20 <= n {
                    let err = i32::from_ne_bytes(word(at + 16));
                    return if err == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-err))
                    };
                }
                at += (mlen + 3) & !3;
            }
        }
    }

    /// A veth pair, both ends down (an end cannot come up before its peer exists): `name`
    /// here, `peer` inside the namespace `peer_ns`.
    pub fn veth(&mut self, name: &str, peer: &str, peer_ns: BorrowedFd) -> io::Result<()> {
        let mut m = Msg::new(&ifinfo(0, false));
        m.attr(IFLA_IFNAME, &cstr(name));
        m.nest(IFLA_LINKINFO, |m| {
            m.attr(IFLA_INFO_KIND, b"veth");
            m.nest(IFLA_INFO_DATA, |m| {
                m.nest(VETH_INFO_PEER, |m| {
                    m.0.extend_from_slice(&ifinfo(0, false));
                    m.attr(IFLA_IFNAME, &cstr(peer));
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
}
