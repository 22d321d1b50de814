//! A fake exchange for the demo tests: a tiny HTTP server answering each GET with the next
//! ticker document.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A tiny HTTP server answering every GET with the next document of `bodies` (repeating the
/// last one), like a ticker endpoint whose price moves. Returns its URL and a hit counter.
pub fn ticker_server(bodies: Vec<String>) -> (String, Arc<AtomicU32>) {
    ticker_server_down_first(bodies, 0)
}

/// A ticker that is down for its first `down` requests (503 Service Unavailable), then
/// answers like [`ticker_server`]. The hit counter counts every request.
pub fn ticker_server_down_first(bodies: Vec<String>, down: u32) -> (String, Arc<AtomicU32>) {
    ticker_server_on("127.0.0.1", bodies, down)
}

/// Rates the fake exchange serves in the demo tests, in order; the last one repeats.
pub const DEMO_RATES: [f64; 6] = [
    478_000.0, 478_120.0, 478_100.0, 477_990.5, 478_030.0, 478_230.25,
];

/// [`DEMO_RATES`] as the exchange's JSON documents (`/data/amount`).
pub fn demo_ticker_bodies() -> Vec<String> {
    DEMO_RATES
        .iter()
        .map(|r| {
            serde_json::json!({"data": {"amount": format!("{r:.2}"), "base": "BTC", "currency": "CNY"}})
                .to_string()
        })
        .collect()
}

/// A ticker like [`ticker_server_down_first`] listening on `address` (port chosen by the
/// system), e.g. the address by which pods reach this machine.
pub fn ticker_server_on(address: &str, bodies: Vec<String>, down: u32) -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind((address, 0)).unwrap();
    let url = format!(
        "http://{}/v2/prices/BTC-CNY/spot",
        listener.local_addr().unwrap()
    );
    let hits = Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            // Read the request head up to the blank line.
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let hit = counter.fetch_add(1, Ordering::SeqCst);
            if hit < down {
                let _ = write!(
                    stream,
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                continue;
            }
            let index = (hit - down) as usize;
            let body = &bodies[index.min(bodies.len() - 1)];
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, hits)
}
