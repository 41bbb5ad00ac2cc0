//! [`TcpTransport`]: the production transport over TCP.

use std::sync::Arc;

use mukan_node_key::NodeKey;
use mukan_reactor_api::NodeInfo;

use crate::backend::Backend;
use crate::core::Core;
use crate::{Config, ConnFilter};

/// A TCP transport (Go `MultiplexTransport`): dials and accepts connections, filters them,
/// upgrades them (secret connection, `NodeInfo` exchange and checks) and hands out peers
/// running MConnection.
///
/// Cheap to clone; all clones share one listener and one connection table.
#[derive(Clone, Debug)]
pub struct TcpTransport {
    core: Core,
}

impl TcpTransport {
    /// A transport for the node `node_key` announcing `node_info`. It dials at once; call
    /// `listen` to accept connections too.
    pub fn new(node_key: Arc<NodeKey>, node_info: NodeInfo, config: Config) -> Self {
        Self::with_filters(node_key, node_info, config, Vec::new())
    }

    /// As [`TcpTransport::new`], with connection filters run on every connection.
    pub fn with_filters(
        node_key: Arc<NodeKey>,
        node_info: NodeInfo,
        config: Config,
        filters: Vec<Arc<dyn ConnFilter>>,
    ) -> Self {
        Self {
            core: Core::new(node_key, node_info, config, filters, Backend::Tcp),
        }
    }
}

crate::core::delegate_transport!(TcpTransport);
