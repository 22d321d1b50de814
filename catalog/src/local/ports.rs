//! Free loopback ports for local services.

use std::net::{Ipv4Addr, TcpListener};

/// Asks the kernel for a free loopback port. The port is released before returning, so a
/// caller that loses the race to another process sees its service fail to bind and retries.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// True when something accepts TCP connections on the loopback port.
pub fn is_listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        std::time::Duration::from_millis(200),
    )
    .is_ok()
}
