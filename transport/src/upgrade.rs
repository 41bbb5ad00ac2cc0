//! The upgrade of a raw connection: secret connection, then the `NodeInfo` exchange, then the
//! checks of Go `MultiplexTransport.upgrade`, in Go's order, each stage with its own timeout.
//! The deny list's ID check comes right after the secret connection, before any `NodeInfo` is
//! sent: a denied node learns nothing about us past our key.

use std::sync::Arc;
use std::time::Duration;

use mukan_node_key::{NodeId, NodeKey};
use mukan_reactor_api::{DenyList, ExchangeError, NetAddress, NodeInfo, RejectDetail};
use mukan_secret_conn::{LengthPrefix, SecretStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Stage, UpgradeError, handshake_failure};

/// A raw connection the upgrade can run on (a TCP socket or an in-memory pipe).
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// What every upgrade needs to know about us.
pub(crate) struct UpgradeCtx {
    pub(crate) node_key: Arc<NodeKey>,
    pub(crate) node_info: NodeInfo,
    /// Our `NodeInfo`, encoded once with its length prefix.
    pub(crate) node_info_msg: Vec<u8>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) node_info_timeout: Duration,
}

impl UpgradeCtx {
    pub(crate) fn new(
        node_key: Arc<NodeKey>,
        node_info: NodeInfo,
        handshake_timeout: Duration,
        node_info_timeout: Duration,
    ) -> Self {
        let node_info_msg = node_info.encode_length_delimited_to_vec();
        Self {
            node_key,
            node_info,
            node_info_msg,
            handshake_timeout,
            node_info_timeout,
        }
    }

    pub(crate) fn our_id(&self) -> NodeId {
        self.node_key.node_id()
    }
}

/// A connection that passed every check.
pub(crate) struct Upgraded<T> {
    pub(crate) stream: SecretStream<T>,
    pub(crate) node_info: NodeInfo,
    pub(crate) id: NodeId,
}

/// Runs the upgrade on `io`. `dialed` is the address we dialed (outbound) or `None`; a peer
/// whose authenticated ID `deny` holds is refused before the `NodeInfo` exchange, and so is
/// one that `authenticated` (told the ID right after the secret connection) refuses.
pub(crate) async fn upgrade<T, F, A>(
    io: T,
    ctx: &UpgradeCtx,
    dialed: Option<&NetAddress>,
    deny: &DenyList,
    authenticated: F,
) -> Result<Upgraded<T>, UpgradeError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
    F: FnOnce(NodeId) -> A,
    A: Future<Output = Result<(), RejectDetail>>,
{
    // 1. Secret connection. Our own timeout bounds it, so the stage is reported exactly.
    let sc_config = mukan_secret_conn::Config::new(ctx.handshake_timeout);
    let stream = match tokio::time::timeout(
        ctx.handshake_timeout,
        SecretStream::handshake(io, &ctx.node_key, &sc_config),
    )
    .await
    {
        Err(_) | Ok(Err(mukan_secret_conn::Error::Timeout)) => {
            return Err(UpgradeError::Timeout(Stage::SecretConnection));
        }
        Ok(Err(e)) => return Err(RejectDetail::Handshake(handshake_failure(e)).into()),
        Ok(Ok(stream)) => stream,
    };
    let id = stream.remote_node_id();

    // 2. The dialed ID must be the authenticated one.
    if let Some(dialed) = dialed {
        if dialed.id() != id {
            return Err(RejectDetail::DialedIdMismatch {
                expected: dialed.id(),
                got: id,
            }
            .into());
        }
    }

    // 3. Not denied (checked here, before we send our NodeInfo; Go checks after the upgrade).
    if deny.is_denied_id(&id) {
        return Err(RejectDetail::DeniedId(id).into());
    }
    authenticated(id).await?;

    // 4. NodeInfo exchange, both directions at once.
    let (stream, node_info) =
        match tokio::time::timeout(ctx.node_info_timeout, exchange(stream, &ctx.node_info_msg))
            .await
        {
            Err(_) => return Err(UpgradeError::Timeout(Stage::NodeInfoExchange)),
            Ok(Err(e)) => return Err(RejectDetail::Exchange(e).into()),
            Ok(Ok(pair)) => pair,
        };

    // 5. Validate.
    node_info
        .validate()
        .map_err(RejectDetail::InvalidNodeInfo)?;

    // 6. The NodeInfo must speak for the authenticated key.
    match node_info.node_id() {
        Ok(claimed) if claimed == id => {}
        _ => {
            return Err(RejectDetail::NodeInfoIdMismatch {
                conn: id,
                node_info: node_info.id.clone(),
            }
            .into());
        }
    }

    // 7. Not ourselves.
    if id == ctx.our_id() {
        return Err(RejectDetail::SelfConnection.into());
    }

    // 8. Compatible with us.
    ctx.node_info
        .compatible_with(&node_info)
        .map_err(RejectDetail::Incompatible)?;

    Ok(Upgraded {
        stream,
        node_info,
        id,
    })
}

/// Writes our `NodeInfo` and reads the peer's concurrently (Go `handshake`), so neither side
/// waits for the other to read first.
async fn exchange<T>(
    stream: SecretStream<T>,
    our_msg: &[u8],
) -> Result<(SecretStream<T>, NodeInfo), ExchangeError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = async {
        writer.write_all(our_msg).await?;
        writer.flush().await
    };
    let read = read_delimited(&mut reader, NodeInfo::MAX_SIZE);
    let (written, body) = tokio::join!(write, read);
    written.map_err(ExchangeError::Io)?;
    let body = body?;
    let node_info = NodeInfo::decode(&body).map_err(ExchangeError::Decode)?;
    Ok((reader.unsplit(writer), node_info))
}

/// Reads one `uvarint(len) || body` message without reading past it (the bytes after it
/// belong to MConnection), refusing a length over `max` before allocating.
pub(crate) async fn read_delimited<R>(reader: &mut R, max: usize) -> Result<Vec<u8>, ExchangeError>
where
    R: AsyncRead + Unpin,
{
    // One byte at a time through the secret connection's prefix decoder (prost underneath).
    let mut prefix = LengthPrefix::new();
    let len = loop {
        let byte = reader.read_u8().await.map_err(ExchangeError::Io)?;
        if let Some(len) = prefix.push(byte).map_err(|_| ExchangeError::Varint)? {
            break len;
        }
    };
    let too_large = ExchangeError::TooLarge { len, max };
    let Ok(len_usize) = usize::try_from(len) else {
        return Err(too_large);
    };
    if len_usize > max {
        return Err(too_large);
    }
    let mut body = vec![0u8; len_usize];
    reader
        .read_exact(&mut body)
        .await
        .map_err(ExchangeError::Io)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delimited_reader_limits_and_varints() {
        let mut ok: &[u8] = &[3, 1, 2, 3, 9];
        assert_eq!(read_delimited(&mut ok, 10).await.unwrap(), vec![1, 2, 3]);
        assert_eq!(ok, &[9], "nothing past the message is consumed");

        // uvarint(10_241)
        let big = [0x81, 0x50];
        assert!(matches!(
            read_delimited(&mut big.as_slice(), 10_240).await,
            Err(ExchangeError::TooLarge {
                len: 10_241,
                max: 10_240
            })
        ));
        // uvarint(u64::MAX)
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            read_delimited(&mut huge.as_slice(), 10_240).await,
            Err(ExchangeError::TooLarge { .. })
        ));
        let mut eleven: &[u8] = &[0xff; 11];
        assert!(matches!(
            read_delimited(&mut eleven, 10).await,
            Err(ExchangeError::Varint)
        ));
        let mut truncated: &[u8] = &[5, 1, 2];
        assert!(matches!(
            read_delimited(&mut truncated, 10).await,
            Err(ExchangeError::Io(_))
        ));
    }
}
