//! Length-prefixed postcard frames: a 4-byte big-endian length, then the payload.
//!
//! The length is checked against [`MAX_FRAME_LEN`] before any allocation so a hostile or
//! broken peer cannot make the other side allocate gigabytes; a bad frame is an error for
//! the caller to turn into a stream close, never a panic.

use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload accepted in one frame (4 MiB).
pub const MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The underlying stream failed.
    #[error("stream i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// The announced payload is larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The length the frame announced.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended in the middle of a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the frame announced.
        expected: usize,
    },
    /// The payload is not a valid message of the expected type.
    #[error("malformed frame payload: {0}")]
    Decode(postcard::Error),
    /// The message could not be encoded.
    #[error("message could not be encoded: {0}")]
    Encode(postcard::Error),
}

/// Encodes one message as a complete frame (length prefix included).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = postcard::to_extend(msg, vec![0u8; 4]).map_err(FrameError::Encode)?;
    let len = buf.len() - 4;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Decodes a frame payload (without the length prefix).
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(payload).map_err(FrameError::Decode)
}

/// Writes one message as a frame.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let buf = encode_frame(msg)?;
    w.write_all(&buf).await?;
    Ok(())
}

/// Reads one raw frame payload; `Ok(None)` on a clean end of stream between frames.
pub async fn read_payload<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len_buf[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated { got, expected: 4 });
        }
        got += n;
    }
    let len = u32::from_be_bytes(len_buf) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    let mut payload = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = r.read(&mut payload[got..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated { got, expected: len });
        }
        got += n;
    }
    Ok(Some(payload))
}

/// Reads and decodes one message; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R, T>(r: &mut R) -> Result<Option<T>, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    match read_payload(r).await? {
        Some(payload) => decode_payload(&payload).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{AgentMessage, Heartbeat};

    fn heartbeat() -> AgentMessage {
        AgentMessage::Heartbeat(Heartbeat {
            sent_at_ms: 1_700_000_000_000,
            outbox_pending: 3,
            cache_items: 10,
            uptime_secs: 5,
        })
    }

    #[tokio::test]
    async fn round_trips_several_frames_then_clean_eof() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &heartbeat()).await.unwrap();
        write_frame(&mut buf, &heartbeat()).await.unwrap();
        let mut r = buf.as_slice();
        assert_eq!(
            read_frame::<_, AgentMessage>(&mut r).await.unwrap(),
            Some(heartbeat())
        );
        assert_eq!(
            read_frame::<_, AgentMessage>(&mut r).await.unwrap(),
            Some(heartbeat())
        );
        assert_eq!(read_frame::<_, AgentMessage>(&mut r).await.unwrap(), None);
    }

    #[tokio::test]
    async fn oversized_length_is_rejected_before_allocation() {
        let mut buf = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&[0u8; 16]);
        let err = read_frame::<_, AgentMessage>(&mut buf.as_slice())
            .await
            .unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len, .. } if len == MAX_FRAME_LEN + 1),
            "{err}"
        );
        assert!(err.to_string().contains("exceeds the limit"));
    }

    #[tokio::test]
    async fn truncated_frames_are_errors_not_eof() {
        let full = encode_frame(&heartbeat()).unwrap();
        for cut in [1, 3, 5, full.len() - 1] {
            let err = read_frame::<_, AgentMessage>(&mut &full[..cut])
                .await
                .unwrap_err();
            assert!(
                matches!(err, FrameError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn garbage_payload_is_a_decode_error() {
        let mut buf = 4u32.to_be_bytes().to_vec();
        buf.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        let err = read_frame::<_, AgentMessage>(&mut buf.as_slice())
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Decode(_)), "{err}");
    }

    #[test]
    fn random_bytes_never_panic_the_decoder() {
        use crate::messages::{ControllerMessage, Hello};
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = decode_payload::<AgentMessage>(&bytes);
            let _ = decode_payload::<ControllerMessage>(&bytes);
            let _ = decode_payload::<Hello>(&bytes);
        }
    }
}
