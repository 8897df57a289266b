//! What one notified system call is: which call, the process that made
//! it, what it was about (a socket address, a program, a file) and the
//! verdict it got. The vocabulary the kernel stream (`kernel`), its
//! verdicts (`verdicts`) and the decision hook (`ask`) share; it decides
//! nothing and reads nothing from the system.

use std::net::IpAddr;

use serde::Serialize;

/// Which system call was notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Syscall {
    Connect,
    Bind,
    Sendto,
    Sendmsg,
    Sendmmsg,
    Execve,
    Execveat,
    Open,
    /// `socket(2)` of a family other than unix (the degraded mode only).
    Socket,
    /// `listen` (notified when the build shares the host's network
    /// namespace: an unbound socket's listen binds it to every address).
    Listen,
    Other,
}

impl Syscall {
    pub(super) fn from_nr(nr: i64) -> Syscall {
        match nr {
            libc::SYS_connect => Syscall::Connect,
            libc::SYS_bind => Syscall::Bind,
            libc::SYS_sendto => Syscall::Sendto,
            libc::SYS_sendmsg => Syscall::Sendmsg,
            libc::SYS_sendmmsg => Syscall::Sendmmsg,
            libc::SYS_execve => Syscall::Execve,
            libc::SYS_execveat => Syscall::Execveat,
            libc::SYS_socket => Syscall::Socket,
            libc::SYS_open | libc::SYS_openat | libc::SYS_openat2 | libc::SYS_creat => {
                Syscall::Open
            }
            libc::SYS_listen => Syscall::Listen,
            _ => Syscall::Other,
        }
    }
}

/// A decoded socket address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "family", rename_all = "kebab-case")]
pub enum SockAddr {
    Inet {
        ip: IpAddr,
        port: u16,
    },
    Unix {
        path: String,
        #[serde(rename = "abstract")]
        is_abstract: bool,
    },
    Netlink,
    Unknown {
        number: u16,
    },
}

impl SockAddr {
    pub fn is_inet(&self) -> bool {
        matches!(self, SockAddr::Inet { .. })
    }

    pub fn is_loopback(&self) -> bool {
        matches!(self, SockAddr::Inet { ip, .. } if ip.is_loopback())
    }
}

impl std::fmt::Display for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SockAddr::Inet {
                ip: IpAddr::V6(ip),
                port,
            } => write!(f, "[{ip}]:{port}"),
            SockAddr::Inet { ip, port } => write!(f, "{ip}:{port}"),
            SockAddr::Unix { path, is_abstract } => {
                write!(f, "unix:{}{}", if *is_abstract { "@" } else { "" }, path)
            }
            SockAddr::Netlink => write!(f, "netlink"),
            SockAddr::Unknown { number } => match family_name(*number) {
                Some(name) => write!(f, "{name}"),
                None => write!(f, "address family {number}"),
            },
        }
    }
}

/// The name of a socket address family sdist-box meets.
pub fn family_name(number: u16) -> Option<&'static str> {
    Some(match number as i32 {
        libc::AF_INET => "AF_INET",
        libc::AF_INET6 => "AF_INET6",
        libc::AF_NETLINK => "AF_NETLINK",
        libc::AF_PACKET => "AF_PACKET",
        libc::AF_UNIX => "AF_UNIX",
        _ => return None,
    })
}

/// What the call was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    Socket {
        addr: Option<SockAddr>,
        /// `stream`, `dgram`, … of the socket, when it could be read.
        socket_type: Option<String>,
        /// The DNS question in a datagram or stream to port 53.
        dns_query: Option<String>,
    },
    Exec {
        /// The path as the caller named it (execveat: `(fd N)` for an
        /// empty one).
        path: String,
        /// What the kernel was to run, resolved in the sandbox's view
        /// ([`super::program`]); `None` for events kept without detail.
        #[serde(skip_serializing_if = "Option::is_none")]
        program: Option<super::program::Program>,
        /// As the caller chose it: `argv[0]` need not name the program.
        argv: Vec<String>,
        /// Names only, never values.
        env_names: Vec<String>,
    },
    File {
        path: String,
        flags: u64,
    },
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The call went on in the kernel.
    Allowed,
    /// The call failed with `errno`.
    Denied,
    /// The call was answered "success" without doing anything (a UDP
    /// connect, so that the datagram after it can be seen and denied).
    Faked,
}

/// The process that made the call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// Pid in the host's (sdist-box's) pid namespace.
    pub host_pid: u32,
    /// Pid inside the sandbox.
    pub pid: Option<u32>,
    /// Parent's pid inside the sandbox.
    pub ppid: Option<u32>,
    pub exe: Option<String>,
    pub argv: Vec<String>,
}
