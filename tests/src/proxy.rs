//! A UDP relay between an agent and the controller's edge that can lose packets or cut
//! the path entirely, to play a flaky backhaul.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tokio::net::UdpSocket;

/// What the relay does with packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward everything.
    Pass,
    /// Drop this many percent of packets, each direction.
    Lossy(u32),
    /// Drop everything.
    Cut,
}

/// The relay.
pub struct UdpProxy {
    addr: SocketAddr,
    drop_percent: Arc<AtomicU32>,
    dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl UdpProxy {
    /// Starts relaying from a fresh loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> UdpProxy {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(upstream).await.unwrap();
        let drop_percent = Arc::new(AtomicU32::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (pct, cnt) = (drop_percent.clone(), dropped.clone());
        let task = tokio::spawn(async move {
            let mut client: Option<SocketAddr> = None;
            let mut up = vec![0u8; 65536];
            let mut down = vec![0u8; 65536];
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let mut lose = move |p: u32| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                p >= 100 || (p > 0 && (seed % 100) < p as u64)
            };
            loop {
                tokio::select! {
                    r = front.recv_from(&mut up) => {
                        let Ok((n, from)) = r else { continue };
                        client = Some(from);
                        if lose(pct.load(Ordering::Relaxed)) { cnt.fetch_add(1, Ordering::Relaxed); continue; }
                        let _ = back.send(&up[..n]).await;
                    }
                    r = back.recv(&mut down) => {
                        let Ok(n) = r else { continue };
                        if lose(pct.load(Ordering::Relaxed)) { cnt.fetch_add(1, Ordering::Relaxed); continue; }
                        if let Some(c) = client { let _ = front.send_to(&down[..n], c).await; }
                    }
                }
            }
        });
        UdpProxy {
            addr,
            drop_percent,
            dropped,
            task,
        }
    }

    /// Where agents should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what happens to packets from now on.
    pub fn set_mode(&self, mode: ProxyMode) {
        let pct = match mode {
            ProxyMode::Pass => 0,
            ProxyMode::Lossy(p) => p.min(100),
            ProxyMode::Cut => 100,
        };
        self.drop_percent.store(pct, Ordering::Relaxed);
    }

    /// Packets dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
