//! Free TCP ports on 127.0.0.1 for test nodes. One file serves the rig (`linli_tests`) and the
//! test helpers of the node and CLI crates (`node/tests/common`, `cli/tests/common` include it
//! by path), so every test binary picks ports the same way.

/// A free TCP port on loopback for a node to bind later. Ports come from 20000-32767, below
/// the kernel's ephemeral range (32768-60999), so the many outgoing connections of concurrent
/// tests cannot take a port between this check and the node's bind; a per-process counter
/// keeps parallel tests apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id() % 64) * 190;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + ((base + n) % 12700) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
