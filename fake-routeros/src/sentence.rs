//! Sentences (words ended by an empty word), the parsed form of a command, and the reply
//! sentences the router sends back.

use std::io;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::word::{self, WordError};

/// Longest word the server accepts; a bigger announced length is treated as a broken peer
/// rather than an allocation to honour.
pub const MAX_WORD_LEN: u32 = 16 * 1024 * 1024;

/// Why a sentence could not be read.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The socket failed or closed in the middle of a sentence.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The length prefix was malformed.
    #[error(transparent)]
    Word(#[from] WordError),
    /// The length prefix announced more than [`MAX_WORD_LEN`] bytes.
    #[error("word of {0} bytes is longer than the {MAX_WORD_LEN} accepted")]
    TooLong(u32),
}

/// Reads sentences from a byte stream; cancel-safe, so it can sit in a `select!` beside
/// other events without losing a half-received sentence.
#[derive(Debug)]
pub struct SentenceReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> SentenceReader<R> {
    /// Wraps a byte stream.
    pub fn new(inner: R) -> Self {
        SentenceReader {
            inner,
            buf: Vec::new(),
        }
    }

    /// The next sentence; `Ok(None)` when the peer closed cleanly between sentences.
    ///
    /// Words are decoded as UTF-8, lossily: RouterOS itself is byte-oriented, but every word
    /// the agent exchanges is ASCII, and strings keep the model and the assertions simple.
    pub async fn read(&mut self) -> Result<Option<Vec<String>>, ReadError> {
        loop {
            if let Some((words, used)) = decode_sentence(&self.buf)? {
                self.buf.drain(..used);
                return Ok(Some(words));
            }
            // `read_buf` either appends or, when cancelled, reads nothing: the buffer is the
            // only state, which is what makes this method cancel-safe.
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::from(io::ErrorKind::UnexpectedEof).into())
                };
            }
        }
    }
}

/// Decodes the first complete sentence in `buf`: its words and how many bytes it took, or
/// `None` while more bytes are needed.
pub fn decode_sentence(buf: &[u8]) -> Result<Option<(Vec<String>, usize)>, ReadError> {
    let mut words = Vec::new();
    let mut pos = 0;
    loop {
        let Some(&first) = buf.get(pos) else {
            return Ok(None);
        };
        let n = word::prefix_len(first)?;
        let Some(prefix) = buf.get(pos..pos + n) else {
            return Ok(None);
        };
        let len = word::decode_length(prefix)?;
        pos += n;
        if len == 0 {
            return Ok(Some((words, pos)));
        }
        if len > MAX_WORD_LEN {
            return Err(ReadError::TooLong(len));
        }
        let Some(bytes) = buf.get(pos..pos + len as usize) else {
            return Ok(None);
        };
        words.push(String::from_utf8_lossy(bytes).into_owned());
        pos += len as usize;
    }
}

/// Encodes one sentence, terminating empty word included.
pub fn encode_sentence<S: AsRef<str>>(words: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in words {
        word::encode_word(w.as_ref().as_bytes(), &mut out);
    }
    out.push(0);
    out
}

/// Writes one sentence and flushes it.
pub async fn write_sentence<W: AsyncWrite + Unpin, S: AsRef<str>>(
    writer: &mut W,
    words: &[S],
) -> io::Result<()> {
    writer.write_all(&encode_sentence(words)).await?;
    writer.flush().await
}

/// A command sentence split into its parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// The command word, e.g. `/ip/hotspot/user/add`.
    pub path: String,
    /// `=name=value` words, in the order sent (a name may repeat).
    pub attributes: Vec<(String, String)>,
    /// The `.tag=` API attribute.
    pub tag: Option<String>,
    /// The `.proplist=` API attribute, when sent as `.proplist=` rather than `=.proplist=`.
    pub api_proplist: Option<String>,
    /// `?` query words, in order, without the leading `?`.
    pub queries: Vec<String>,
    /// Words that fit none of the forms above.
    pub unknown: Vec<String>,
}

impl Command {
    /// Splits a sentence; `None` for an empty one.
    pub fn parse(words: &[String]) -> Option<Command> {
        let (path, rest) = words.split_first()?;
        let mut cmd = Command {
            path: path.clone(),
            ..Command::default()
        };
        for w in rest {
            if let Some(attr) = w.strip_prefix('=') {
                // `=name` without a second `=` is a flag attribute with an empty value.
                let (name, value) = attr.split_once('=').unwrap_or((attr, ""));
                cmd.attributes.push((name.to_owned(), value.to_owned()));
            } else if let Some(query) = w.strip_prefix('?') {
                cmd.queries.push(query.to_owned());
            } else if let Some(tag) = w.strip_prefix(".tag=") {
                cmd.tag = Some(tag.to_owned());
            } else if let Some(props) = w.strip_prefix(".proplist=") {
                cmd.api_proplist = Some(props.to_owned());
            } else {
                cmd.unknown.push(w.clone());
            }
        }
        Some(cmd)
    }

    /// The last value of an `=name=value` attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `.proplist`, from either spelling, split on commas.
    pub fn proplist(&self) -> Option<Vec<String>> {
        let raw = self
            .attribute(".proplist")
            .or(self.api_proplist.as_deref())?;
        Some(
            raw.split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// One reply sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `!re`: one row, attributes in the order given.
    Re(Vec<(String, String)>),
    /// `!done`, with `=ret=` when the command returns a value.
    Done(Option<String>),
    /// `!trap`: an error; the command still ends with `!done`.
    Trap {
        /// `=category=`, when RouterOS gives one.
        category: Option<u8>,
        /// `=message=`.
        message: String,
    },
    /// `!empty`: a print that matched nothing (RouterOS 7.18+).
    Empty,
    /// `!fatal`: the router closes the connection after it.
    Fatal(String),
}

impl Reply {
    /// A `!trap` without a category.
    pub fn trap(message: impl Into<String>) -> Reply {
        Reply::Trap {
            category: None,
            message: message.into(),
        }
    }

    /// The words of this reply; a tag goes second, right after the reply word, as in
    /// captures of real routers (mikrotik-rs relies on that position).
    pub fn to_words(&self, tag: Option<&str>) -> Vec<String> {
        let head = match self {
            Reply::Re(_) => "!re",
            Reply::Done(_) => "!done",
            Reply::Trap { .. } => "!trap",
            Reply::Empty => "!empty",
            Reply::Fatal(_) => "!fatal",
        };
        let mut words = vec![head.to_owned()];
        // `!fatal` carries its reason as a bare word and is never tagged: it ends the
        // connection, not one command.
        if let Reply::Fatal(reason) = self {
            words.push(reason.clone());
            return words;
        }
        if let Some(tag) = tag {
            words.push(format!(".tag={tag}"));
        }
        match self {
            Reply::Re(attrs) => words.extend(attrs.iter().map(|(k, v)| format!("={k}={v}"))),
            Reply::Done(Some(ret)) => words.push(format!("=ret={ret}")),
            Reply::Trap { category, message } => {
                if let Some(c) = category {
                    words.push(format!("=category={c}"));
                }
                words.push(format!("=message={message}"));
            }
            Reply::Done(None) | Reply::Empty | Reply::Fatal(_) => {}
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn parses_every_word_form() {
        let cmd = Command::parse(&words(&[
            "/ip/hotspot/user/print",
            "=.proplist=name,profile",
            "=comment=a=b",
            "=count-only",
            "?name=x",
            ".tag=7",
            "junk",
        ]))
        .unwrap();
        assert_eq!(cmd.path, "/ip/hotspot/user/print");
        assert_eq!(cmd.attribute("comment"), Some("a=b"));
        assert_eq!(cmd.attribute("count-only"), Some(""));
        assert_eq!(cmd.proplist().unwrap(), ["name", "profile"]);
        assert_eq!(cmd.queries, ["name=x"]);
        assert_eq!(cmd.tag.as_deref(), Some("7"));
        assert_eq!(cmd.unknown, ["junk"]);
    }

    #[test]
    fn tag_is_second_word() {
        let w = Reply::Trap {
            category: Some(2),
            message: "interrupted".into(),
        }
        .to_words(Some("x"));
        assert_eq!(
            w,
            ["!trap", ".tag=x", "=category=2", "=message=interrupted"]
        );
    }

    #[tokio::test]
    async fn sentence_round_trip() {
        let long = "v".repeat(300);
        let sent = words(&["/login", "=name=admin", &long]);
        let bytes = encode_sentence(&sent);
        assert_eq!(decode_sentence(&bytes[..bytes.len() - 1]).unwrap(), None);
        let mut reader = SentenceReader::new(&bytes[..]);
        assert_eq!(reader.read().await.unwrap(), Some(sent));
        assert_eq!(reader.read().await.unwrap(), None);
    }
}
