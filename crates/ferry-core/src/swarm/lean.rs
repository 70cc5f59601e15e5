//! A request stream that reads what arrives instead of zeroing room for the largest request.
//!
//! iroh-blobs 0.103 reads each request into a zeroed buffer of its largest message size
//! (`MAX_MESSAGE_SIZE`, 1 MiB) before it knows how long the request is. A request is tens of
//! bytes, and a synced folder of small files makes one per file: on the sending side of
//! 10,000 small files that zeroing was the largest single cost in the profile (memset, 7% of
//! its CPU; docs/BENCHMARKS.md). [`Lean`] grows its buffer with the chunks that arrive, up to
//! the same limit, and behaves the same otherwise.

use bytes::Bytes;
use iroh::endpoint::{RecvStream, VarInt};

/// A request stream for the provider (see the module docs).
#[derive(Debug)]
pub struct Lean(pub RecvStream);

impl iroh_blobs::util::RecvStream for Lean {
    async fn recv_bytes(&mut self, len: usize) -> std::io::Result<Bytes> {
        let mut out = Vec::new();
        while out.len() < len {
            match self.0.read_chunk(len - out.len()).await {
                Ok(Some(chunk)) => out.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out.into())
    }

    async fn recv_bytes_exact(&mut self, len: usize) -> std::io::Result<Bytes> {
        iroh_blobs::util::RecvStream::recv_bytes_exact(&mut self.0, len).await
    }

    async fn recv_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        iroh_blobs::util::RecvStream::recv_exact(&mut self.0, buf).await
    }

    fn stop(&mut self, code: VarInt) -> std::io::Result<()> {
        iroh_blobs::util::RecvStream::stop(&mut self.0, code)
    }

    fn id(&self) -> u64 {
        iroh_blobs::util::RecvStream::id(&self.0)
    }
}
