//! A TCP proxy that delays one direction, as a network between two machines does: what the
//! upstream sends reaches the client `delay` later, and what is still on its way when the
//! upstream dies is lost, as packets in flight are when a machine goes down. Put between a
//! Redis replica and its primary, it makes the replica lag behind, so a failover can lose
//! writes the primary had already acknowledged.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub struct LagProxy {
    port: u16,
}

impl LagProxy {
    /// Listens on a free loopback port and forwards each connection to `upstream`.
    pub fn start(upstream: u16, delay: Duration) -> LagProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], upstream)))
                else {
                    continue;
                };
                pipe(client, server, delay);
            }
        });
        LagProxy { port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Client to server at once; server to client `delay` late, dropping what is not yet due
/// when the server's side ends.
fn pipe(client: TcpStream, server: TcpStream, delay: Duration) {
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = c_read.read(&mut buf) {
            if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Both);
    });
    let (tx, rx) = mpsc::channel::<Option<(Instant, Vec<u8>)>>();
    let gone = Arc::new(AtomicBool::new(false));
    let mut s_read = server;
    let server_gone = gone.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match s_read.read(&mut buf) {
                Ok(n) if n > 0 => {
                    if tx
                        .send(Some((Instant::now() + delay, buf[..n].to_vec())))
                        .is_err()
                    {
                        return;
                    }
                }
                // The server is gone: whatever is still in flight never arrives.
                _ => {
                    server_gone.store(true, Ordering::SeqCst);
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    });
    let mut c_write = client;
    std::thread::spawn(move || {
        while let Ok(Some((due, bytes))) = rx.recv() {
            // A chunk still in flight when the server went is dropped with the rest.
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if gone.load(Ordering::SeqCst) || c_write.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = c_write.shutdown(Shutdown::Both);
    });
}
