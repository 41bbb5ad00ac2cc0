// The mukan-p2p network map. Reads /map/api/* every few seconds and draws the graph with
// d3-force (vendored): edges on a canvas, nodes as SVG circles (coloured by version, hollow
// when unreachable, ringed when ours). Text from the network is only ever set as text.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const REFRESH_MS = Math.max(1, Number(params.get("refresh")) || 10) * 1000;
  const HISTORY_COLUMNS = 12;
  const PALETTE = ["#0969da", "#1a7f37", "#cf222e", "#8250df", "#bf8700", "#1b7c83",
    "#e16f24", "#6e7781", "#bf3989", "#4d2d00"];
  const SVG_NS = "http://www.w3.org/2000/svg";
  // Reachable, but its version is not known (a book entry the node connected to once).
  const UNKNOWN = "#8c959f";

  let chain = params.get("chain");
  const colours = new Map();
  const nodesById = new Map();
  const circles = new Map();
  let links = [];
  let linkKey = "";
  let sim = null;

  const box = document.getElementById("graph-box");
  const svg = document.getElementById("graph");
  const canvas = document.getElementById("edges");

  function text(id, value) {
    document.getElementById(id).textContent = String(value);
  }

  async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store" });
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  function query() {
    return chain ? "?chain=" + encodeURIComponent(chain) : "";
  }

  function colour(version) {
    if (!version) return UNKNOWN;
    if (!colours.has(version)) colours.set(version, PALETTE[colours.size % PALETTE.length]);
    return colours.get(version);
  }

  function size() {
    const r = box.getBoundingClientRect();
    return { w: Math.max(200, r.width), h: Math.max(200, r.height) };
  }

  function renderChains(kind, chains) {
    text("kind", kind + " map");
    const nav = document.getElementById("chains");
    const want = chains.join("\n");
    if (nav.dataset.chains !== want) {
      nav.dataset.chains = want;
      nav.replaceChildren();
      for (const c of chains) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = c;
        b.dataset.chain = c;
        b.addEventListener("click", () => {
          if (chain === c) return;
          chain = c;
          history.replaceState(null, "", "?chain=" + encodeURIComponent(c));
          nodesById.clear();
          refresh();
        });
        nav.appendChild(b);
      }
    }
    for (const b of nav.children) b.classList.toggle("active", b.dataset.chain === chain);
  }

  function drawEdges() {
    const { w, h } = size();
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = links.length > 2000 ? "rgba(87,96,106,0.05)" : "rgba(87,96,106,0.35)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const l of links) {
      ctx.moveTo(l.source.x, l.source.y);
      ctx.lineTo(l.target.x, l.target.y);
    }
    ctx.stroke();
  }

  function tick() {
    for (const [id, c] of circles) {
      const n = nodesById.get(id);
      // Between a switch of chain (the nodes forgotten) and the next data: nothing to place.
      if (!n) continue;
      c.setAttribute("cx", n.x.toFixed(1));
      c.setAttribute("cy", n.y.toFixed(1));
    }
    drawEdges();
  }

  function describe(n) {
    const parts = [n.moniker || "(never reached)", n.version ? "v" + n.version : "", n.address];
    if (n.latency_ms != null) parts.push(n.latency_ms + " ms handshake");
    if (!n.reachable) parts.push("unreachable");
    if (n.ours) parts.push("ours");
    return parts.filter(Boolean).join(" · ");
  }

  function renderGraph(graph) {
    const nodes = graph ? graph.nodes : [];
    const edges = graph ? graph.edges : [];
    text("node-count", nodes.length);
    text("reachable-count", nodes.filter((n) => n.reachable).length);
    text("unreachable-count", nodes.filter((n) => !n.reachable).length);
    text("edge-count", edges.length);
    text("graph-source", graph ? graph.source + " · " + new Date(graph.taken_at).toLocaleString() : "nothing yet");
    document.getElementById("graphml").href = "/map/graph.graphml" + query();

    const { w, h } = size();
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    const seen = new Set();
    let added = false;
    for (const n of nodes) {
      seen.add(n.id);
      let o = nodesById.get(n.id);
      if (!o) {
        o = { x: w / 2 + (Math.random() - 0.5) * w * 0.6, y: h / 2 + (Math.random() - 0.5) * h * 0.6 };
        nodesById.set(n.id, o);
        added = true;
      }
      Object.assign(o, n);
    }
    for (const id of [...nodesById.keys()]) {
      if (!seen.has(id)) {
        nodesById.delete(id);
        added = true;
      }
    }
    // One circle per node.
    for (const [id, c] of circles) {
      if (!nodesById.has(id)) {
        c.remove();
        circles.delete(id);
      }
    }
    for (const [id, n] of nodesById) {
      let c = circles.get(id);
      if (!c) {
        c = document.createElementNS(SVG_NS, "circle");
        c.appendChild(document.createElementNS(SVG_NS, "title"));
        c.addEventListener("mouseenter", () => text("selected", describe(nodesById.get(id) || n)));
        svg.appendChild(c);
        circles.set(id, c);
      }
      c.setAttribute("class", "node" + (n.reachable ? "" : " unreachable") + (n.ours ? " ours" : ""));
      c.setAttribute("r", n.ours ? 8 : 5);
      c.setAttribute("fill", n.reachable ? colour(n.version) : "#ffffff");
      c.dataset.id = id;
      c.dataset.version = n.version;
      c.firstChild.textContent = describe(n);
    }
    // Ours on top.
    for (const [id, c] of circles) if (nodesById.get(id).ours) svg.appendChild(c);

    // Undirected links for the layout, each pair once.
    const pairs = new Map();
    for (const [a, b] of edges) {
      const k = a < b ? a + "|" + b : b + "|" + a;
      if (!pairs.has(k)) pairs.set(k, { source: a, target: b });
    }
    const key = [...pairs.keys()].join(",");
    const changed = added || key !== linkKey;
    linkKey = key;
    links = [...pairs.values()];
    const list = [...nodesById.values()];
    if (!sim) {
      sim = d3.forceSimulation(list)
        .force("link", d3.forceLink(links).id((d) => d.id).distance(40).strength(0.03))
        .force("charge", d3.forceManyBody().strength(-40).distanceMax(250))
        .force("x", d3.forceX(w / 2).strength(0.06))
        .force("y", d3.forceY(h / 2).strength(0.06))
        .force("collide", d3.forceCollide(7))
        .on("tick", tick);
    } else if (changed) {
      sim.nodes(list);
      sim.force("link").links(links);
      sim.force("x").x(w / 2);
      sim.force("y").y(h / 2);
      sim.alpha(0.5).restart();
    } else {
      // Same graph: nothing moves, but the attributes above may have changed.
      sim.force("link").links(links);
      tick();
    }
    svg.dataset.nodes = String(circles.size);

    // Legend: versions of reachable nodes, most common first.
    const counts = new Map();
    for (const n of nodes) if (n.reachable) counts.set(n.version, (counts.get(n.version) || 0) + 1);
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    for (const [v, k] of [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = colour(v);
      li.appendChild(sw);
      li.appendChild(document.createTextNode((v || "version unknown") + " — " + k));
      legend.appendChild(li);
    }
  }

  function cell(tag, value) {
    const c = document.createElement(tag);
    c.textContent = String(value);
    return c;
  }

  function renderHistory(crawls) {
    // Newest first.
    const shown = crawls.slice(0, HISTORY_COLUMNS);
    const table = document.getElementById("versions");
    const head = document.createElement("tr");
    head.appendChild(cell("th", shown.length ? "crawl" : "no crawl yet"));
    for (const c of shown) {
      const t = new Date(c.started_at).toLocaleTimeString();
      head.appendChild(cell("th", "#" + c.id + " " + t + (c.finished_at == null ? " (unfinished)" : "")));
    }
    table.tHead.replaceChildren(head);
    const versions = new Set();
    for (const c of shown) for (const v of Object.keys(c.versions)) versions.add(v);
    const rows = [["reachable", (c) => c.reachable], ["unreachable", (c) => c.unreachable]];
    for (const v of [...versions].sort()) rows.push(["version " + (v || "unknown"), (c) => c.versions[v] || 0]);
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const [label, f] of rows) {
      const tr = document.createElement("tr");
      tr.dataset.row = label;
      tr.appendChild(cell("th", label));
      for (const c of shown) tr.appendChild(cell("td", f(c)));
      body.appendChild(tr);
    }
  }

  function renderBook(book) {
    const section = document.getElementById("book");
    if (!book) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    const body = document.querySelector("#book-table tbody");
    body.replaceChildren();
    for (const [k, v] of Object.entries(book)) {
      const tr = document.createElement("tr");
      tr.dataset.key = k;
      tr.appendChild(cell("th", k.replace(/_/g, " ")));
      tr.appendChild(cell("td", v == null ? "–" : typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : v));
      body.appendChild(tr);
    }
  }

  let timer = null;
  async function refresh() {
    if (timer !== null) clearTimeout(timer);
    try {
      const info = await getJSON("/map/api/chains");
      if (!chain || !info.chains.includes(chain)) chain = info.chains[0] || null;
      renderChains(info.kind, info.chains);
      const q = query();
      const [graph, crawls, book] = await Promise.all([
        getJSON("/map/api/graph" + q),
        getJSON("/map/api/history" + q),
        getJSON("/map/api/book" + q),
      ]);
      renderGraph(graph);
      renderHistory(crawls);
      renderBook(book);
      text("updated", "updated " + new Date().toLocaleTimeString() + " · refreshes every " + REFRESH_MS / 1000 + " s");
      document.body.dataset.ready = "true";
    } catch (e) {
      // Shown on the page (the node may be restarting); the next refresh tries again.
      text("updated", "update failed: " + e.message);
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  window.addEventListener("resize", () => {
    if (sim) {
      const { w, h } = size();
      svg.setAttribute("viewBox", "0 0 " + w + " " + h);
      sim.force("x").x(w / 2);
      sim.force("y").y(h / 2);
      sim.alpha(0.3).restart();
    }
  });
  refresh();
})();
