//! A raw API client for the tests: sentences in, sentences out, nothing interpreted.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use mikrobill_fake_routeros::sentence::{SentenceReader, encode_sentence};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Long enough for a loaded machine, short enough that a hang fails the test.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub struct Client {
    reader: SentenceReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (r, w) = stream.into_split();
        Client {
            reader: SentenceReader::new(r),
            writer: w,
        }
    }

    /// Connects and logs in as admin with an empty password (the default account).
    pub async fn logged_in(addr: SocketAddr) -> Client {
        let mut client = Client::connect(addr).await;
        let reply = client.call(&["/login", "=name=admin", "=password="]).await;
        assert_eq!(reply, [["!done"]]);
        client
    }

    pub async fn send(&mut self, words: &[&str]) {
        self.writer
            .write_all(&encode_sentence(words))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("send");
    }

    /// The next sentence; panics on a closed connection or after [`PATIENCE`].
    pub async fn recv(&mut self) -> Vec<String> {
        tokio::time::timeout(PATIENCE, self.reader.read())
            .await
            .expect("a reply in time")
            .expect("a readable reply")
            .expect("an open connection")
    }

    /// Sends an untagged command and collects replies up to `!done` (or `!fatal`).
    pub async fn call(&mut self, words: &[&str]) -> Vec<Vec<String>> {
        self.send(words).await;
        let mut replies = Vec::new();
        loop {
            let sentence = self.recv().await;
            let last = matches!(sentence[0].as_str(), "!done" | "!fatal");
            replies.push(sentence);
            if last {
                return replies;
            }
        }
    }

    /// True when the router closes the connection (EOF or reset) before `PATIENCE`.
    pub async fn closed(&mut self) -> bool {
        match tokio::time::timeout(PATIENCE, self.reader.read()).await {
            Ok(Ok(None) | Err(_)) => true,
            Ok(Ok(Some(sentence))) => panic!("expected a closed connection, got {sentence:?}"),
            Err(_) => false,
        }
    }

    /// True when nothing arrives within `wait`.
    pub async fn silent_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.reader.read())
            .await
            .is_err()
    }
}

/// The `=key=value` words of a reply as a map.
pub fn attrs(sentence: &[String]) -> BTreeMap<String, String> {
    sentence
        .iter()
        .filter_map(|w| w.strip_prefix('='))
        .map(|w| {
            let (k, v) = w.split_once('=').unwrap_or((w, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Polls until `check` holds, for at most [`PATIENCE`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
