//! A UDP relay between an agent and the controller's edge that can lose packets, delay them
//! or cut the path entirely, to play a flaky or distant backhaul.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

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
    delay_us: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Where a delayed packet goes once its time has come.
#[derive(Clone, Copy)]
enum Towards {
    Controller,
    Agent(SocketAddr),
}

/// Sends each packet when its time comes, in the order they arrived: a link with a fixed
/// one-way delay keeps packet order.
async fn delay_line(
    mut queue: mpsc::UnboundedReceiver<(Instant, Towards, Vec<u8>)>,
    front: Arc<UdpSocket>,
    back: Arc<UdpSocket>,
) {
    while let Some((due, towards, packet)) = queue.recv().await {
        tokio::time::sleep_until(due).await;
        let _ = match towards {
            Towards::Controller => back.send(&packet).await,
            Towards::Agent(to) => front.send_to(&packet, to).await,
        };
    }
}

impl UdpProxy {
    /// Starts relaying from a fresh loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> UdpProxy {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(upstream).await.unwrap();
        let drop_percent = Arc::new(AtomicU32::new(0));
        let delay_us = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (pct, cnt, delay) = (drop_percent.clone(), dropped.clone(), delay_us.clone());
        // One line per direction, so a burst one way does not hold up the other.
        let (up_line, up_queue) = mpsc::unbounded_channel();
        let (down_line, down_queue) = mpsc::unbounded_channel();
        let lines = [
            tokio::spawn(delay_line(up_queue, front.clone(), back.clone())),
            tokio::spawn(delay_line(down_queue, front.clone(), back.clone())),
        ];
        let relay = tokio::spawn(async move {
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
                        match delay.load(Ordering::Relaxed) {
                            0 => { let _ = back.send(&up[..n]).await; }
                            us => {
                                let due = Instant::now() + Duration::from_micros(us);
                                let _ = up_line.send((due, Towards::Controller, up[..n].to_vec()));
                            }
                        }
                    }
                    r = back.recv(&mut down) => {
                        let Ok(n) = r else { continue };
                        if lose(pct.load(Ordering::Relaxed)) { cnt.fetch_add(1, Ordering::Relaxed); continue; }
                        let Some(c) = client else { continue };
                        match delay.load(Ordering::Relaxed) {
                            0 => { let _ = front.send_to(&down[..n], c).await; }
                            us => {
                                let due = Instant::now() + Duration::from_micros(us);
                                let _ = down_line.send((due, Towards::Agent(c), down[..n].to_vec()));
                            }
                        }
                    }
                }
            }
        });
        let mut tasks = vec![relay];
        tasks.extend(lines);
        UdpProxy {
            addr,
            drop_percent,
            delay_us,
            dropped,
            tasks,
        }
    }

    /// Delays every packet by `one_way` in each direction from now on (a round trip of twice
    /// that); zero forwards at once.
    pub fn set_delay(&self, one_way: Duration) {
        self.delay_us
            .store(one_way.as_micros() as u64, Ordering::Relaxed);
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
        for task in &self.tasks {
            task.abort();
        }
    }
}
