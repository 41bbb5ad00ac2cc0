//! The network graph the map page draws and `crawl --graphml` exports: nodes (ID, address,
//! moniker, version, reachable or not, ours or not) and directed edges (who listed whom in
//! its PEX answer, or whom a node is connected to).

use std::collections::HashSet;
use std::fmt::Write as _;

use serde::Serialize;

/// A node of the graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct GraphNode {
    /// Node ID (hex).
    pub(crate) id: String,
    /// `id@host:port` last seen.
    pub(crate) address: String,
    /// Its moniker (empty when it was never reached).
    pub(crate) moniker: String,
    /// Its software version (empty when it was never reached).
    pub(crate) version: String,
    /// It completed the handshake (in this crawl, or the node reached it lately).
    pub(crate) reachable: bool,
    /// Handshake latency, milliseconds.
    pub(crate) latency_ms: Option<f64>,
    /// One of ours: the node serving the page, or a seed the crawl started from.
    pub(crate) ours: bool,
}

/// A graph: nodes and directed edges `(from, to)` between their IDs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Graph {
    /// The chain.
    pub(crate) chain_id: String,
    /// Where it comes from: `crawl <id>` or `node`.
    pub(crate) source: String,
    /// When it was taken (Unix milliseconds).
    pub(crate) taken_at: i64,
    /// Nodes, each ID once.
    pub(crate) nodes: Vec<GraphNode>,
    /// Edges; both ends are in `nodes`, each pair once.
    pub(crate) edges: Vec<(String, String)>,
}

impl Graph {
    /// Drops edges whose ends are not both nodes, and repeated edges.
    pub(crate) fn prune_edges(&mut self) {
        let ids: HashSet<&str> = self.nodes.iter().map(|n| n.id.as_str()).collect();
        let mut seen = HashSet::new();
        self.edges.retain(|(a, b)| {
            ids.contains(a.as_str())
                && ids.contains(b.as_str())
                && seen.insert((a.clone(), b.clone()))
        });
    }

    /// The graph as GraphML (what Gephi, yEd and networkx read): node attributes `moniker`,
    /// `version`, `address`, `reachable`, `latency_ms`, `ours`; directed edges.
    pub(crate) fn to_graphml(&self) -> String {
        let mut s = String::new();
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        s.push_str(
            "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
             http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
        );
        for (key, ty) in [
            ("moniker", "string"),
            ("version", "string"),
            ("address", "string"),
            ("reachable", "boolean"),
            ("latency_ms", "double"),
            ("ours", "boolean"),
        ] {
            let _ = writeln!(
                s,
                "  <key id=\"{key}\" for=\"node\" attr.name=\"{key}\" attr.type=\"{ty}\"/>"
            );
        }
        let _ = writeln!(
            s,
            "  <graph id=\"{}\" edgedefault=\"directed\">",
            xml(&self.chain_id)
        );
        for n in &self.nodes {
            let _ = writeln!(s, "    <node id=\"{}\">", xml(&n.id));
            let _ = writeln!(s, "      <data key=\"moniker\">{}</data>", xml(&n.moniker));
            let _ = writeln!(s, "      <data key=\"version\">{}</data>", xml(&n.version));
            let _ = writeln!(s, "      <data key=\"address\">{}</data>", xml(&n.address));
            let _ = writeln!(s, "      <data key=\"reachable\">{}</data>", n.reachable);
            if let Some(l) = n.latency_ms {
                let _ = writeln!(s, "      <data key=\"latency_ms\">{l}</data>");
            }
            let _ = writeln!(s, "      <data key=\"ours\">{}</data>", n.ours);
            s.push_str("    </node>\n");
        }
        for (i, (a, b)) in self.edges.iter().enumerate() {
            let _ = writeln!(
                s,
                "    <edge id=\"e{i}\" source=\"{}\" target=\"{}\"/>",
                xml(a),
                xml(b)
            );
        }
        s.push_str("  </graph>\n</graphml>\n");
        s
    }
}

/// Escapes text for XML (monikers and versions come from the network).
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot hold at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, version: &str, reachable: bool) -> GraphNode {
        GraphNode {
            id: id.into(),
            address: format!("{id}@127.0.0.1:1"),
            moniker: format!("<{id}>&\"x\"\u{1}"),
            version: version.into(),
            reachable,
            latency_ms: reachable.then_some(1.5),
            ours: id == "a",
        }
    }

    #[test]
    fn graphml_escapes_network_text_and_keeps_every_node_and_edge() {
        let mut g = Graph {
            chain_id: "c<1>".into(),
            source: "crawl 1".into(),
            taken_at: 0,
            nodes: vec![
                node("a", "1.0", true),
                node("b", "0.38.25", true),
                node("c", "", false),
            ],
            edges: vec![
                ("a".into(), "b".into()),
                ("a".into(), "b".into()),
                ("b".into(), "c".into()),
                ("b".into(), "zz".into()),
            ],
        };
        g.prune_edges();
        assert_eq!(g.edges.len(), 2);
        let x = g.to_graphml();
        assert_eq!(x.matches("<node id=").count(), 3);
        assert_eq!(x.matches("<edge id=").count(), 2);
        assert!(x.contains("&lt;a&gt;&amp;&quot;x&quot;\u{fffd}"), "{x}");
        assert!(
            x.contains("<graph id=\"c&lt;1&gt;\" edgedefault=\"directed\">"),
            "{x}"
        );
        assert!(!x.contains('\u{1}'));
        // Balanced elements: every opened node is closed.
        assert_eq!(x.matches("<node ").count(), x.matches("</node>").count());
    }
}
