//! The proxy's listening sockets: one per worker, all on the same port with `SO_REUSEPORT`, so
//! the kernel spreads new connections across workers without a shared accept queue.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog for each listener; the kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;

pub struct Listeners {
    /// The bound address (the real port when the config said `:0`).
    pub local_addr: SocketAddr,
    pub sockets: Vec<TcpListener>,
}

/// Binds `workers` listeners on `addr`. With port 0 the first one picks the port and the others
/// join it.
pub fn bind(addr: SocketAddr, workers: usize) -> io::Result<Listeners> {
    let mut local_addr = addr;
    let mut sockets = Vec::with_capacity(workers);
    for _ in 0..workers.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if workers > 1 {
            socket.set_reuse_port(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&local_addr.into())?;
        socket.listen(BACKLOG)?;
        if let Some(bound) = socket.local_addr()?.as_socket() {
            local_addr = bound;
        }
        sockets.push(socket.into());
    }
    Ok(Listeners {
        local_addr,
        sockets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_share_one_port() {
        let l = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(l.sockets.len(), 3);
        assert_ne!(l.local_addr.port(), 0);
        for s in &l.sockets {
            assert_eq!(s.local_addr().unwrap(), l.local_addr);
        }
    }
}
