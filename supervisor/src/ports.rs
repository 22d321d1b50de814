//! Free loopback ports for local services.
//!
//! A port is found free here and bound later by the service, so something else can take it
//! in between. The kernel's own choice (`bind` to port 0) comes from the ephemeral range,
//! which every outgoing connection on the machine also draws from: with many Kafka clients
//! connecting, a port handed out that way is soon some connection's local port. Ports are
//! therefore taken from below the ephemeral range, which the kernel never assigns by itself,
//! walking it from a random start so that this process never hands out one port twice in a
//! row and concurrent `weir` processes rarely meet. The local runtime still starts a service
//! again on fresh ports when it finds its port taken all the same.

use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The lowest port handed out: below are well-known services' habits (8080, 9092, 2181...).
const LOWEST: u16 = 20_000;

/// The highest handed out, and the end of the range when the kernel's is not known. Ports
/// from 30000 are left to Kubernetes node ports, which a node's proxy may redirect.
const END: u16 = 30_000;

/// How many taken ports are passed over before giving up on the range.
const PROBES: u32 = 256;

/// Finds a loopback port nothing listens on. The port is released before returning, so a
/// caller that loses the race to another process sees its service fail to bind.
pub fn free_port() -> std::io::Result<u16> {
    static RANGE: OnceLock<Range<u16>> = OnceLock::new();
    free_port_in(RANGE.get_or_init(unassigned_range).clone(), cursor())
}

/// Probes `range` from `cursor` on, moving the cursor past each port probed.
fn free_port_in(range: Range<u16>, cursor: &AtomicU32) -> std::io::Result<u16> {
    let width = u32::from(range.end - range.start);
    for _ in 0..PROBES.min(width) {
        let offset = cursor.fetch_add(1, Ordering::Relaxed) % width;
        let port = range.start + offset as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    // The range is crowded: the kernel's choice still works, only with the race above.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The ports from [`LOWEST`] up to the kernel's ephemeral range (or [`END`]).
fn unassigned_range() -> Range<u16> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok());
    let end = ephemeral_low.map_or(END, |low| low.min(END));
    // An ephemeral range that starts very low leaves no room: use the default one.
    if end > LOWEST + 1_000 {
        LOWEST..end
    } else {
        LOWEST..END
    }
}

/// Where the next probe is, shared by the process's threads; starts at random.
fn cursor() -> &'static AtomicU32 {
    static CURSOR: OnceLock<AtomicU32> = OnceLock::new();
    CURSOR.get_or_init(|| {
        // `RandomState` is seeded from the operating system's randomness.
        let random = RandomState::new().hash_one(std::process::id());
        AtomicU32::new(random as u32)
    })
}

/// True when something accepts TCP connections on the loopback port.
pub fn is_listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        std::time::Duration::from_millis(200),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_below_the_ephemeral_range_and_are_not_repeated() {
        let range = unassigned_range();
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        for port in &ports {
            assert!(range.contains(port), "{port} is outside {range:?}");
        }
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            ports.len(),
            "a port was handed out twice: {ports:?}"
        );
    }

    #[test]
    fn a_port_something_listens_on_is_passed_over() {
        let range = unassigned_range();
        let port = free_port().unwrap();
        let _taken = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        let at_taken = AtomicU32::new(u32::from(port - range.start));
        let next = free_port_in(range.clone(), &at_taken).unwrap();
        assert_ne!(next, port);
        assert!(range.contains(&next));
    }
}
