//! The secret-connection handshake run by hand, with `mukan-secret-conn`'s sans-IO pieces, for
//! peers that must step outside the protocol after it (evil peers of the bad-input suite, the
//! load scenarios' raw writers): every step is a plain call, so a test can stop after any one
//! or write what it likes next.

use mukan_node_key::{NodeKey, PublicKey};
use mukan_secret_conn::{
    AwaitingAuthSig, AwaitingEphKey, DATA_MAX_SIZE, FrameOpener, FrameSealer, Handshake,
    SEALED_FRAME_LEN,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Length of the ephemeral-key message (`0x22 0x0a 0x20` and 32 key bytes).
pub const EPH_MSG_LEN: usize = 35;

/// Longest protobuf varint.
const MAX_VARINT_LEN: usize = 10;

/// Largest delimited message [`read_delimited`] takes (1 MiB): more is an error, not memory.
pub const MAX_DELIMITED: usize = 1 << 20;

/// The two halves of an authenticated secret connection, and what was read past the last
/// whole message.
pub struct Sealed {
    /// Seals what we send.
    pub sealer: FrameSealer,
    /// Opens what we receive.
    pub opener: FrameOpener,
    /// Plaintext opened but not yet taken by [`Sealed::read_delimited`].
    pub pending: Vec<u8>,
}

impl Sealed {
    /// Reads one delimited message (as an honest side writes them: in whole frames).
    ///
    /// # Errors
    /// The read failed, a frame did not open, or the length prefix says more than
    /// [`MAX_DELIMITED`].
    pub async fn read_delimited(
        &mut self,
        rd: &mut (impl AsyncRead + Unpin),
    ) -> Result<Vec<u8>, String> {
        read_delimited(rd, &mut self.opener, &mut self.pending).await
    }

    /// Seals `plain` into frames of up to [`DATA_MAX_SIZE`] bytes, appended to `out`.
    pub fn seal_into(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        seal_into(&mut self.sealer, plain, out);
    }
}

/// Exchanges ephemeral keys over `rd`/`wr` (ours from `hs`): the frame halves, and the
/// handshake state for the authentication stage.
///
/// # Errors
/// A read or write failed, or the other side's key message is invalid.
pub async fn exchange_eph(
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
    hs: Handshake<AwaitingEphKey>,
) -> Result<(Handshake<AwaitingAuthSig>, Sealed), String> {
    wr.write_all(&hs.eph_key_message())
        .await
        .map_err(|e| format!("write eph: {e}"))?;
    let mut theirs = [0u8; EPH_MSG_LEN];
    rd.read_exact(&mut theirs)
        .await
        .map_err(|e| format!("read eph: {e}"))?;
    let len = usize::from(theirs[0]).min(EPH_MSG_LEN - 1);
    let (hs, sealer, opener) = hs
        .recv_eph_key(&theirs[1..=len])
        .map_err(|e| format!("eph: {e}"))?;
    let sealed = Sealed {
        sealer,
        opener,
        pending: Vec::new(),
    };
    Ok((hs, sealed))
}

/// The whole handshake as `key`: ephemeral keys, then both authentication messages. Returns
/// the frame halves and the other side's authenticated key.
///
/// # Errors
/// As [`exchange_eph`], or the other side's authentication does not verify.
pub async fn handshake(
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
    hs: Handshake<AwaitingEphKey>,
    key: &NodeKey,
) -> Result<(Sealed, PublicKey), String> {
    let (hs, mut sealed) = exchange_eph(rd, wr, hs).await?;
    let mut out = Vec::new();
    sealed.seal_into(&hs.auth_sig_message(key), &mut out);
    wr.write_all(&out)
        .await
        .map_err(|e| format!("write auth: {e}"))?;
    let auth = sealed.read_delimited(rd).await?;
    let remote = hs.recv_auth_sig(&auth).map_err(|e| format!("auth: {e}"))?;
    Ok((sealed, remote))
}

/// Seals `plain` into frames of up to [`DATA_MAX_SIZE`] bytes, appended to `out`.
pub fn seal_into(sealer: &mut FrameSealer, plain: &[u8], out: &mut Vec<u8>) {
    let mut frame = [0u8; SEALED_FRAME_LEN];
    for chunk in plain.chunks(DATA_MAX_SIZE) {
        // Cannot fail before 2^64 frames.
        let _ = sealer.seal(chunk, &mut frame);
        out.extend_from_slice(&frame);
    }
}

/// Reads one delimited message through `opener`, keeping what follows it in `pending`.
///
/// # Errors
/// The read failed, a frame did not open, or the length prefix says more than
/// [`MAX_DELIMITED`].
pub async fn read_delimited(
    rd: &mut (impl AsyncRead + Unpin),
    opener: &mut FrameOpener,
    pending: &mut Vec<u8>,
) -> Result<Vec<u8>, String> {
    loop {
        let mut head = &pending[..];
        if let Ok(len) = prost::decode_length_delimiter(&mut head) {
            if len > MAX_DELIMITED {
                return Err(format!("a delimited message of {len} bytes"));
            }
            let used = pending.len() - head.len();
            if pending.len() >= used + len {
                let body = pending[used..used + len].to_vec();
                pending.drain(..used + len);
                return Ok(body);
            }
        } else if pending.len() >= MAX_VARINT_LEN {
            return Err("a length prefix longer than 10 bytes".into());
        }
        let mut frame = [0u8; SEALED_FRAME_LEN];
        rd.read_exact(&mut frame)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let plain = opener.open(&mut frame).map_err(|e| format!("open: {e}"))?;
        pending.extend_from_slice(plain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two handshake halves over an in-memory pipe, as an honest pair would run them.
    async fn pair() -> (Sealed, Sealed) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (mut ar, mut aw) = tokio::io::split(a);
        let (mut br, mut bw) = tokio::io::split(b);
        let ka = NodeKey::from_seed([1; 32]);
        let kb = NodeKey::from_seed([2; 32]);
        let ha = Handshake::from_ephemeral_secret([3; 32]);
        let hb = Handshake::from_ephemeral_secret([4; 32]);
        let (ra, rb) = tokio::join!(
            handshake(&mut ar, &mut aw, ha, &ka),
            handshake(&mut br, &mut bw, hb, &kb)
        );
        let ((sa, pa), (sb, pb)) = (ra.expect("a"), rb.expect("b"));
        assert_eq!(pa.node_id(), kb.public_key().node_id());
        assert_eq!(pb.node_id(), ka.public_key().node_id());
        (sa, sb)
    }

    #[tokio::test]
    async fn a_message_over_several_frames_comes_back_whole_and_what_follows_stays() {
        let (mut a, mut b) = pair().await;
        let body = vec![7u8; 3000];
        let mut plain = Vec::new();
        prost::encode_length_delimiter(body.len(), &mut plain).expect("room");
        plain.extend_from_slice(&body);
        prost::encode_length_delimiter(1, &mut plain).expect("room");
        plain.push(9);
        let mut out = Vec::new();
        a.seal_into(&plain, &mut out);
        assert_eq!(out.len(), 3 * SEALED_FRAME_LEN);
        let mut rd = &out[..];
        assert_eq!(b.read_delimited(&mut rd).await.expect("first"), body);
        assert_eq!(b.read_delimited(&mut rd).await.expect("second"), vec![9]);
    }

    #[tokio::test]
    async fn a_length_over_the_limit_is_an_error_not_a_read() {
        let (mut a, mut b) = pair().await;
        let mut plain = Vec::new();
        prost::encode_length_delimiter(MAX_DELIMITED + 1, &mut plain).expect("room");
        let mut out = Vec::new();
        a.seal_into(&plain, &mut out);
        let mut rd = &out[..];
        let err = b.read_delimited(&mut rd).await.expect_err("too long");
        assert!(err.contains("delimited message"), "{err}");
    }
}
