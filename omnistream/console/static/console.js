// omnistream console: lay the journey graph out with elkjs (vendored, elk.bundled.js) and
// redraw its edges. The server already drew every step node with its figures in a simple
// layered layout, so the page works without this script; here the same <g data-step-id>
// nodes are only moved to ELK's positions and the edges re-routed. No data is written as HTML:
// labels go in with textContent.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function elkGraph(model) {
  const known = new Set(model.nodes.map((n) => n.id));
  return {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.edgeRouting": "ORTHOGONAL",
      "elk.spacing.nodeNode": "40",
      "elk.layered.spacing.nodeNodeBetweenLayers": "60",
      "elk.edgeLabels.inline": "true",
    },
    children: model.nodes.map((n) => ({ id: n.id, width: n.width, height: n.height })),
    edges: model.edges
      .filter((e) => known.has(e.target))
      .map((e, i) => ({
        id: "e" + i,
        sources: [e.source],
        targets: [e.target],
        labels: e.label ? [{ text: e.label, width: 6.5 * e.label.length, height: 14 }] : [],
      })),
  };
}

function element(name, attributes) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function drawEdge(group, edge) {
  for (const section of edge.sections || []) {
    const points = [section.startPoint, ...(section.bendPoints || []), section.endPoint];
    const d = points.map((p, i) => (i ? "L" : "M") + p.x + "," + p.y).join(" ");
    const g = element("g", { class: "edge", "data-source": edge.sources[0], "data-target": edge.targets[0] });
    g.appendChild(element("path", { d: d, "marker-end": "url(#arrow)" }));
    for (const label of edge.labels || []) {
      const text = element("text", { x: label.x, y: label.y + 11, class: "edge-label" });
      text.textContent = label.text;
      g.appendChild(text);
    }
    group.appendChild(g);
  }
}

function apply(svg, laid) {
  for (const child of laid.children) {
    const node = svg.querySelector('g[data-step-id="' + CSS.escape(child.id) + '"]');
    if (node) node.setAttribute("transform", "translate(" + child.x + "," + child.y + ")");
  }
  const edges = svg.querySelector("g.edges");
  edges.replaceChildren();
  for (const edge of laid.edges) drawEdge(edges, edge);
  const width = laid.width + 20, height = laid.height + 20;
  svg.setAttribute("viewBox", "-10 -10 " + width + " " + height);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.dataset.layout = "elk";
}

async function layout(container) {
  const svg = container.querySelector('svg[data-testid="journey-graph"]');
  const response = await fetch(container.dataset.graphUrl, { credentials: "same-origin" });
  if (!svg || !response.ok) return;
  const laid = await new ELK().layout(elkGraph(await response.json()));
  apply(svg, laid);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const container of document.querySelectorAll(".graph[data-graph-url]")) {
    layout(container).catch((error) => {
      container.dataset.layoutError = String(error);
      console.error("console: graph layout failed", error);
    });
  }
});
