//! Listening sockets: `[::]` means every address of both families, so that
//! one default serves IPv4-only, IPv6-only and dual-stack clusters alike.

use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a TCP listener on `addr`. The unspecified IPv6 address (`[::]`)
/// takes IPv4 connections too (a dual-stack socket); on a kernel without
/// IPv6 it falls back to `0.0.0.0` on the same port.
pub fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => match dual_stack(addr) {
            Ok(socket) => socket,
            Err(err) if no_ipv6(&err) => {
                let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
                tracing::info!("no IPv6 here ({err}); listening on {v4}");
                bound(v4, Domain::IPV4)?
            }
            Err(err) => return Err(err),
        },
        SocketAddr::V6(_) => bound(addr, Domain::IPV6)?,
        SocketAddr::V4(_) => bound(addr, Domain::IPV4)?,
    };
    let listener: std::net::TcpListener = socket.into();
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

fn dual_stack(addr: SocketAddr) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    bind_and_listen(socket, addr)
}

fn bound(addr: SocketAddr, domain: Domain) -> std::io::Result<Socket> {
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    bind_and_listen(socket, addr)
}

fn bind_and_listen(socket: Socket, addr: SocketAddr) -> std::io::Result<Socket> {
    // As std does: a restarted server can take its port back at once.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket)
}

/// Raises this process's soft limit on open files to its hard limit (as Go
/// programs do), so that `--max-connections` rather than the shell's
/// default of 1024 bounds the connections a server holds. Returns the
/// limit now in force.
#[allow(unsafe_code)]
pub fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given,
    // which lives on this stack frame for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return Some(raised.rlim_cur);
            }
        }
    }
    Some(limit.rlim_cur)
}

/// Whether `err` says the machine has no IPv6 (module absent or disabled).
fn no_ipv6(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == 97 /* EAFNOSUPPORT */ || code == 99 /* EADDRNOTAVAIL */
    )
}

/// The kernel's id of the calling thread.
#[allow(unsafe_code)]
pub(crate) fn thread_id() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Moves a thread of this process to the lowest CPU priority (nice 19): it
/// then runs only on CPU time that nothing else wants.
#[allow(unsafe_code)]
pub(crate) fn lowest_priority(thread: i32) {
    // SAFETY: setpriority takes plain integers; a thread that has ended
    // makes it fail with ESRCH, which is ignored.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 19) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_unspecified_ipv6_address_takes_ipv4_connections_too() {
        let listener = listen("[::]:0".parse().expect("an address")).expect("bound");
        let port = listener.local_addr().expect("its address").port();
        let accept = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("an IPv4 client reaches it");
        let peer = accept.await.expect("accepted").expect("a peer");
        let ip = match peer.ip() {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4),
            v4 => Some(v4),
        };
        assert_eq!(ip, Some(Ipv4Addr::LOCALHOST.into()));
    }

    #[tokio::test]
    async fn an_ipv4_address_binds_as_given() {
        let listener = listen("127.0.0.1:0".parse().expect("an address")).expect("bound");
        assert!(listener.local_addr().expect("its address").is_ipv4());
    }
}
