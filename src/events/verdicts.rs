//! The supervisor's verdicts on network calls (and, for `restrict-exec`
//! profiles, on exec), by the profile's network mode. Kept apart from the
//! notification loop in `kernel.rs`: this file decides, that one answers.
//!
//! Modes (see `policy::profile::NetworkMode`):
//! - `none`: the build has an empty network namespace; internet-family
//!   calls are refused (a UDP connect, or TCP to port 53, is answered
//!   "success" without connecting, so the question sent after it is seen).
//! - `loopback`, `allowlist`: the build shares the host's network
//!   namespace, so this file is the wall that says *where*. A permitted
//!   `connect`, `bind` or datagram send is performed **by the supervisor**
//!   on the caller's own socket (a duplicate of its descriptor), with the
//!   address the supervisor decoded and checked: the kernel never reads
//!   the caller's memory again, so a thread rewriting the address after the
//!   check (the classic seccomp-notify TOCTOU) changes nothing. The calls
//!   that *continue* in the kernel are only those where the kernel reads no
//!   address from memory: stream sends (TCP ignores `msg_name`; fast open,
//!   which does not, is refused) and `sendto` with a null address on a
//!   socket we connected. Abstract unix addresses are refused (they are the
//!   host's in its network namespace: X11, D-Bus); Landlock's scope rule
//!   refuses them in the kernel too, and its TCP port rules are the second
//!   wall of an allowlist. `sendmmsg` on internet datagram sockets answers
//!   `ENOSYS` (libc then sends one by one, through `sendto`).
//!
//! Invariants: every verdict is computed from values the supervisor holds
//! (decoded copies, the socket's own type from the kernel), never from
//! caller memory read again later; refusing is always safe, so anything
//! undecodable is refused in the shared-namespace modes.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::syscall::{SockAddr, Syscall};
use crate::sandbox::NetworkMode;
use crate::sandbox::{SandboxPlan, sys};

/// What the supervisor knows of the profile.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    pub mode: NetworkMode,
    /// Allowlist mode: the resolved destinations.
    pub allow: Vec<SocketAddr>,
    /// TCP/UDP ports a loopback `bind` may use (0: any free port).
    pub bind_ports: Vec<u16>,
    /// `restrict-exec`: what may be executed (paths identical inside and
    /// outside: system dirs, the interpreter, the build env).
    pub exec: Option<Vec<PathBuf>>,
}

impl NetPolicy {
    pub fn from_plan(plan: &SandboxPlan) -> NetPolicy {
        NetPolicy {
            mode: plan.network.mode,
            allow: plan.network.allow.clone(),
            bind_ports: plan.network.bind_ports.clone(),
            exec: plan
                .landlock
                .restrict_exec
                .then(|| plan.landlock.exec.clone()),
        }
    }

    fn shares_host_netns(&self) -> bool {
        self.mode != NetworkMode::None
    }

    /// May the build reach `ip:port`?
    pub fn permits(&self, ip: IpAddr, port: u16) -> bool {
        match self.mode {
            NetworkMode::None => false,
            NetworkMode::Loopback => ip.is_loopback(),
            NetworkMode::Allowlist => self
                .allow
                .iter()
                .any(|a| a.port() == port && (a.ip() == ip || mapped(a.ip()) == mapped(ip))),
        }
    }

    fn permits_bind(&self, ip: IpAddr, port: u16) -> bool {
        ip.is_loopback() && self.bind_ports.contains(&port)
    }
}

fn mapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// A call the supervisor performs itself, on a duplicate of the caller's
/// socket, with its own copy of the address and data.
#[derive(Debug)]
pub enum OnBehalf {
    Connect(SocketAddr),
    Bind(SocketAddr),
    /// A datagram: to `to`, or to the socket's connected peer.
    Send {
        to: Option<SocketAddr>,
        payload: Vec<u8>,
        nonblocking: bool,
    },
}

/// The verdict on one network call.
#[derive(Debug)]
pub enum NetVerdict {
    /// Let the kernel do it.
    Continue,
    /// Fail with this errno.
    Deny(i32),
    /// Answer success without doing anything (see the module header).
    Fake,
    /// Perform it ourselves (shared-namespace modes, permitted address).
    OnBehalf(OnBehalf),
}

/// What the notification loop decoded about one network call.
pub struct NetCall<'a> {
    pub syscall: Syscall,
    /// The address the caller passed (decoded copy), if any.
    pub explicit: Option<&'a SockAddr>,
    /// The caller passed a non-null address pointer (even if undecodable).
    pub has_address_arg: bool,
    /// The peer the kernel says the socket is connected to.
    pub peer: Option<&'a SockAddr>,
    /// The peer a faked connect pretended to connect to.
    pub fake_peer: Option<&'a SockAddr>,
    /// `stream`, `dgram`, … from the kernel (not from caller memory).
    pub socket_type: Option<&'a str>,
    /// The socket is AF_INET/AF_INET6 (from the kernel).
    pub socket_inet: bool,
    /// The flags argument (a register, not memory).
    pub flags: u64,
    /// The datagram's bytes, when a send may be performed on behalf
    /// (`None`: not read, or larger than [`MAX_DATAGRAM`]).
    pub payload: Option<Vec<u8>>,
}

/// Largest datagram the supervisor sends on the build's behalf.
pub const MAX_DATAGRAM: usize = 65_536;

/// The verdict on a network call. In `none` mode this is the historical
/// rule set; in the shared-namespace modes, see the module header.
pub fn network_verdict(policy: &NetPolicy, call: NetCall<'_>) -> NetVerdict {
    let addr = call.explicit.or(call.peer);
    let inet = addr.is_some_and(SockAddr::is_inet) || (addr.is_none() && call.socket_inet);
    let udp = call.socket_type == Some("dgram");
    if !policy.shares_host_netns() {
        return match call.syscall {
            _ if !inet => NetVerdict::Continue,
            Syscall::Connect
                if udp || matches!(call.explicit, Some(SockAddr::Inet { port: 53, .. })) =>
            {
                NetVerdict::Fake
            }
            Syscall::Bind if addr.is_some_and(SockAddr::is_loopback) => NetVerdict::Continue,
            _ => NetVerdict::Deny(libc::EACCES),
        };
    }

    // Shared network namespace from here on.
    if let Some(SockAddr::Unix { is_abstract, .. }) = call.explicit {
        return if *is_abstract {
            NetVerdict::Deny(libc::EACCES)
        } else {
            NetVerdict::Continue
        };
    }
    if call.has_address_arg && call.explicit.is_none() {
        return NetVerdict::Deny(libc::EINVAL);
    }
    if !call.socket_inet {
        return match call.explicit {
            // A unix socket (or one we could not inspect) without an
            // address, or with a path address: no network involved.
            None if call.socket_type.is_some() => NetVerdict::Continue,
            _ => NetVerdict::Deny(libc::EACCES),
        };
    }
    let target = |a: &SockAddr| match a {
        SockAddr::Inet { ip, port } => Some(SocketAddr::new(*ip, *port)),
        _ => None,
    };
    match call.syscall {
        Syscall::Connect => {
            let Some(to) = call.explicit.and_then(target) else {
                return NetVerdict::Deny(libc::EACCES);
            };
            if policy.permits(to.ip(), to.port()) {
                NetVerdict::OnBehalf(OnBehalf::Connect(to))
            } else if udp || to.port() == 53 {
                NetVerdict::Fake
            } else {
                NetVerdict::Deny(libc::EACCES)
            }
        }
        Syscall::Bind => match call.explicit.and_then(target) {
            Some(at) if policy.permits_bind(at.ip(), at.port()) => {
                NetVerdict::OnBehalf(OnBehalf::Bind(at))
            }
            _ => NetVerdict::Deny(libc::EACCES),
        },
        Syscall::Sendto | Syscall::Sendmsg | Syscall::Sendmmsg => {
            if call.socket_type == Some("stream") {
                // TCP ignores a send's address, except for fast open,
                // which connects to it.
                return if call.flags & libc::MSG_FASTOPEN as u64 != 0 {
                    NetVerdict::Deny(libc::EACCES)
                } else {
                    NetVerdict::Continue
                };
            }
            if call.syscall == Syscall::Sendmmsg {
                return NetVerdict::Deny(libc::ENOSYS);
            }
            if call.fake_peer.is_some() && call.explicit.is_none() {
                return NetVerdict::Deny(libc::EACCES);
            }
            let to = match call.explicit {
                Some(a) => match target(a) {
                    Some(t) => Some(t),
                    None => return NetVerdict::Deny(libc::EACCES),
                },
                None => None,
            };
            let permitted = match (to, call.peer.and_then(target)) {
                (Some(t), _) => policy.permits(t.ip(), t.port()),
                (None, Some(p)) => policy.permits(p.ip(), p.port()),
                // Not connected: the kernel answers EDESTADDRREQ itself.
                (None, None) => return NetVerdict::Continue,
            };
            if !permitted {
                return NetVerdict::Deny(libc::EACCES);
            }
            // `sendto(…, NULL, 0)`: the address pointer is a register, so
            // the kernel reads none; the peer is one we connected.
            if call.syscall == Syscall::Sendto && to.is_none() {
                return NetVerdict::Continue;
            }
            match call.payload {
                Some(payload) => NetVerdict::OnBehalf(OnBehalf::Send {
                    to,
                    payload,
                    nonblocking: call.flags & libc::MSG_DONTWAIT as u64 != 0,
                }),
                None => NetVerdict::Deny(libc::EMSGSIZE),
            }
        }
        _ => NetVerdict::Continue,
    }
}

/// `listen` in the shared-namespace modes: `Some(errno)` unless the socket
/// is bound to a loopback address (an unbound socket's `listen` binds it to
/// every address of the host, opening a port to the network; binds go
/// through [`network_verdict`], so a loopback-bound socket stays so).
pub fn listen_verdict(policy: &NetPolicy, local: Option<&SockAddr>) -> Option<i32> {
    if !policy.shares_host_netns() {
        return None;
    }
    match local {
        Some(SockAddr::Inet { ip, port }) if ip.is_loopback() && *port != 0 => None,
        Some(SockAddr::Inet { .. }) | None => Some(libc::EACCES),
        // Unix sockets: by path, or abstract (refused at bind already).
        Some(_) => None,
    }
}

/// Perform `action` on `socket` (a duplicate of the caller's descriptor:
/// the same open socket). Returns the system call's result or an errno.
pub fn perform(socket: &OwnedFd, action: &OnBehalf) -> Result<i64, i32> {
    use nix::sys::socket::{MsgFlags, SockaddrStorage};
    let family_v6 = socket_is_v6(socket);
    let storage = |a: &SocketAddr| -> SockaddrStorage {
        // An AF_INET6 socket reaches IPv4 through a mapped address.
        let a = match (a, family_v6) {
            (SocketAddr::V4(v4), true) => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            _ => *a,
        };
        SockaddrStorage::from(a)
    };
    let errno = |e: nix::errno::Errno| e as i32;
    match action {
        OnBehalf::Connect(to) => nix::sys::socket::connect(socket.as_raw_fd(), &storage(to))
            .map(|()| 0)
            .map_err(errno),
        OnBehalf::Bind(at) => nix::sys::socket::bind(socket.as_raw_fd(), &storage(at))
            .map(|()| 0)
            .map_err(errno),
        OnBehalf::Send {
            to,
            payload,
            nonblocking,
        } => {
            // Never SIGPIPE the supervisor.
            let mut flags = MsgFlags::MSG_NOSIGNAL;
            if *nonblocking {
                flags |= MsgFlags::MSG_DONTWAIT;
            }
            // An unbound socket's first datagram binds it to every address
            // (it could then receive from the network): to a loopback
            // destination, bind it to loopback first.
            if let Some(to) = to
                && to.ip().is_loopback()
                && socket_unbound(socket)
            {
                let lo = SocketAddr::new(to.ip(), 0);
                nix::sys::socket::bind(socket.as_raw_fd(), &storage(&lo)).map_err(errno)?;
            }
            let sent = match to {
                Some(to) => {
                    nix::sys::socket::sendto(socket.as_raw_fd(), payload, &storage(to), flags)
                }
                None => nix::sys::socket::send(socket.as_raw_fd(), payload, flags),
            };
            sent.map(|n| n as i64).map_err(errno)
        }
    }
}

fn socket_unbound(socket: &OwnedFd) -> bool {
    use nix::sys::socket::{SockaddrStorage, getsockname};
    match getsockname::<SockaddrStorage>(socket.as_raw_fd()) {
        Ok(a) => {
            a.as_sockaddr_in().is_some_and(|v4| v4.port() == 0)
                || a.as_sockaddr_in6().is_some_and(|v6| v6.port() == 0)
        }
        Err(_) => false,
    }
}

fn socket_is_v6(socket: &OwnedFd) -> bool {
    use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage, getsockname};
    getsockname::<SockaddrStorage>(socket.as_raw_fd())
        .ok()
        .and_then(|a| a.family())
        == Some(AddressFamily::Inet6)
}

/// Read the bytes a `sendto` (buffer, length) or `sendmsg` (every iovec)
/// would send, bounded by [`MAX_DATAGRAM`]; `None` when larger or unreadable.
pub fn read_payload(pid: u32, syscall: Syscall, args: &[u64; 6]) -> Option<Vec<u8>> {
    use crate::sandbox::sys::read_process_memory;
    match syscall {
        Syscall::Sendto => {
            let len = args[2] as usize;
            if len > MAX_DATAGRAM {
                return None;
            }
            if len == 0 {
                return Some(Vec::new());
            }
            read_process_memory(pid, args[1], len)
                .ok()
                .filter(|b| b.len() == len)
        }
        Syscall::Sendmsg => {
            // struct msghdr: name, namelen(+pad), iov, iovlen, …
            let h = read_process_memory(pid, args[1], 32).ok()?;
            if h.len() < 32 {
                return None;
            }
            let iov = u64::from_ne_bytes(h[16..24].try_into().ok()?);
            let iovlen = u64::from_ne_bytes(h[24..32].try_into().ok()?) as usize;
            if iovlen > 64 {
                return None;
            }
            let vecs = read_process_memory(pid, iov, iovlen * 16).ok()?;
            let mut out = Vec::new();
            for v in vecs.chunks_exact(16) {
                let base = u64::from_ne_bytes(v[0..8].try_into().ok()?);
                let len = u64::from_ne_bytes(v[8..16].try_into().ok()?) as usize;
                if out.len() + len > MAX_DATAGRAM {
                    return None;
                }
                if len > 0 {
                    let chunk = read_process_memory(pid, base, len).ok()?;
                    if chunk.len() != len {
                        return None;
                    }
                    out.extend_from_slice(&chunk);
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// `restrict-exec`: `Some(errno)` when the program `path` (as the caller
/// named it) exists in the sandbox and lies outside what may be executed.
/// Landlock refuses it in the kernel either way; this makes the kernel
/// stream say so. A program that does not exist is left to the kernel
/// (`ENOENT`: a `PATH` search trying directories is not an attempt).
pub fn exec_verdict(policy: &NetPolicy, pid: u32, path: &str) -> Option<i32> {
    let allowed = policy.exec.as_ref()?;
    if !path.starts_with('/') {
        return None;
    }
    // The sandbox's own view of the file, resolved in its root: its links
    // are followed there, never on the host (an absolute link followed
    // through /proc/PID/root lands on the host's file, and the errno would
    // tell the package whether that exists).
    if crate::beneath::kind_in_view_of(pid, path) != Some(crate::beneath::Kind::File) {
        return None;
    }
    // Symlinks are resolved on the host only where the sandbox binds the
    // host's tree at the same path (system dirs, the exec entries).
    let same_path_roots = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];
    let lexical = Path::new(path);
    let resolved = if same_path_roots.iter().any(|r| lexical.starts_with(r))
        || allowed.iter().any(|a| lexical.starts_with(a))
    {
        std::fs::canonicalize(lexical).unwrap_or_else(|_| lexical.to_path_buf())
    } else {
        lexical.to_path_buf()
    };
    if allowed.iter().any(|a| resolved.starts_with(a)) {
        None
    } else {
        Some(libc::EACCES)
    }
}

/// Perform `action` on a thread of its own and answer the notification
/// with its result (a connect may block as long as the peer takes).
pub(crate) fn answer_on_behalf(
    listener: &OwnedFd,
    id: u64,
    socket: OwnedFd,
    action: OnBehalf,
) -> std::io::Result<()> {
    let listener = listener.try_clone()?;
    std::thread::Builder::new()
        .name("sdist-box-on-behalf".into())
        .spawn(move || {
            let answer = match perform(&socket, &action) {
                Ok(value) => sys::notif_respond_value(listener.as_fd(), id, value),
                Err(errno) => sys::notif_respond(listener.as_fd(), id, false, errno),
            };
            drop(answer);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn inet(ip: [u8; 4], port: u16) -> SockAddr {
        SockAddr::Inet {
            ip: IpAddr::V4(Ipv4Addr::from(ip)),
            port,
        }
    }

    fn call<'a>(syscall: Syscall, explicit: Option<&'a SockAddr>, kind: &'a str) -> NetCall<'a> {
        NetCall {
            syscall,
            explicit,
            has_address_arg: explicit.is_some(),
            peer: None,
            fake_peer: None,
            socket_type: Some(kind),
            socket_inet: explicit.is_none_or(SockAddr::is_inet),
            flags: 0,
            payload: Some(b"x".to_vec()),
        }
    }

    fn policy(mode: NetworkMode) -> NetPolicy {
        NetPolicy {
            mode,
            allow: vec!["127.0.0.1:8080".parse().unwrap()],
            bind_ports: vec![0],
            exec: None,
        }
    }

    #[test]
    fn none_mode_refuses_inet_and_fakes_udp_connects() {
        let p = policy(NetworkMode::None);
        let lo = inet([127, 0, 0, 1], 8080);
        assert!(matches!(
            network_verdict(&p, call(Syscall::Connect, Some(&lo), "stream")),
            NetVerdict::Deny(libc::EACCES)
        ));
        let dns = inet([10, 0, 0, 1], 53);
        assert!(matches!(
            network_verdict(&p, call(Syscall::Connect, Some(&dns), "dgram")),
            NetVerdict::Fake
        ));
    }

    #[test]
    fn loopback_mode_connects_on_behalf_only_to_loopback() {
        let p = policy(NetworkMode::Loopback);
        let lo = inet([127, 0, 0, 2], 1234);
        match network_verdict(&p, call(Syscall::Connect, Some(&lo), "stream")) {
            NetVerdict::OnBehalf(OnBehalf::Connect(a)) => {
                assert_eq!(a, "127.0.0.2:1234".parse().unwrap())
            }
            v => panic!("{v:?}"),
        }
        let out = inet([93, 184, 216, 34], 443);
        assert!(matches!(
            network_verdict(&p, call(Syscall::Connect, Some(&out), "stream")),
            NetVerdict::Deny(libc::EACCES)
        ));
    }

    #[test]
    fn allowlist_mode_lets_only_listed_pairs_through() {
        let p = policy(NetworkMode::Allowlist);
        let ok = inet([127, 0, 0, 1], 8080);
        let other_port = inet([127, 0, 0, 1], 8081);
        assert!(matches!(
            network_verdict(&p, call(Syscall::Connect, Some(&ok), "stream")),
            NetVerdict::OnBehalf(OnBehalf::Connect(_))
        ));
        assert!(matches!(
            network_verdict(&p, call(Syscall::Connect, Some(&other_port), "stream")),
            NetVerdict::Deny(libc::EACCES)
        ));
        // A datagram to a listed pair is sent by the supervisor; to another
        // one refused; sendmmsg answers ENOSYS.
        assert!(matches!(
            network_verdict(&p, call(Syscall::Sendto, Some(&ok), "dgram")),
            NetVerdict::OnBehalf(OnBehalf::Send { .. })
        ));
        assert!(matches!(
            network_verdict(&p, call(Syscall::Sendto, Some(&other_port), "dgram")),
            NetVerdict::Deny(libc::EACCES)
        ));
        assert!(matches!(
            network_verdict(&p, call(Syscall::Sendmmsg, None, "dgram")),
            NetVerdict::Deny(libc::ENOSYS)
        ));
    }

    #[test]
    fn shared_netns_refuses_abstract_unix_and_fast_open() {
        let p = policy(NetworkMode::Loopback);
        let x11 = SockAddr::Unix {
            path: "/tmp/.X11-unix/X0".into(),
            is_abstract: true,
        };
        let mut c = call(Syscall::Connect, Some(&x11), "stream");
        c.socket_inet = false;
        assert!(matches!(
            network_verdict(&p, c),
            NetVerdict::Deny(libc::EACCES)
        ));
        let path = SockAddr::Unix {
            path: "/build/src/sock".into(),
            is_abstract: false,
        };
        let mut c = call(Syscall::Connect, Some(&path), "stream");
        c.socket_inet = false;
        assert!(matches!(network_verdict(&p, c), NetVerdict::Continue));
        let lo = inet([127, 0, 0, 1], 80);
        let mut c = call(Syscall::Sendto, Some(&lo), "stream");
        c.flags = libc::MSG_FASTOPEN as u64;
        assert!(matches!(
            network_verdict(&p, c),
            NetVerdict::Deny(libc::EACCES)
        ));
        let c = call(Syscall::Sendmsg, None, "stream");
        assert!(matches!(network_verdict(&p, c), NetVerdict::Continue));
    }

    #[test]
    fn bind_only_loopback_and_listed_ports() {
        let p = policy(NetworkMode::Loopback);
        let any = inet([0, 0, 0, 0], 0);
        let lo = inet([127, 0, 0, 1], 0);
        let lo_fixed = inet([127, 0, 0, 1], 8000);
        assert!(matches!(
            network_verdict(&p, call(Syscall::Bind, Some(&any), "stream")),
            NetVerdict::Deny(_)
        ));
        assert!(matches!(
            network_verdict(&p, call(Syscall::Bind, Some(&lo), "stream")),
            NetVerdict::OnBehalf(OnBehalf::Bind(_))
        ));
        assert!(matches!(
            network_verdict(&p, call(Syscall::Bind, Some(&lo_fixed), "stream")),
            NetVerdict::Deny(_)
        ));
    }

    #[test]
    fn listen_only_on_a_loopback_bound_socket() {
        let lo = policy(NetworkMode::Loopback);
        let unbound = inet([0, 0, 0, 0], 0);
        let bound = inet([127, 0, 0, 1], 40000);
        assert_eq!(listen_verdict(&lo, Some(&unbound)), Some(libc::EACCES));
        assert_eq!(listen_verdict(&lo, None), Some(libc::EACCES));
        assert_eq!(listen_verdict(&lo, Some(&bound)), None);
        // Its own network namespace: nothing to protect.
        assert_eq!(
            listen_verdict(&policy(NetworkMode::None), Some(&unbound)),
            None
        );
    }

    #[test]
    fn undecodable_address_is_refused_in_shared_netns() {
        let p = policy(NetworkMode::Loopback);
        let mut c = call(Syscall::Connect, None, "stream");
        c.has_address_arg = true;
        assert!(matches!(
            network_verdict(&p, c),
            NetVerdict::Deny(libc::EINVAL)
        ));
    }
}
