// Neighbourhood graph: a small force layout in plain SVG, fed by the graph store's JSON endpoint.
(function () {
  var svg = document.getElementById("graph");
  if (!svg) return;
  var NS = "http://www.w3.org/2000/svg";
  var status = document.getElementById("graph-status");
  var colours = {product: "#64748b", brand: "#2563eb", category: "#16a34a", material: "#ea580c",
                 color: "#db2777", user: "#9ca3af"};
  var nodes = {}, edges = {}, expanded = {}, dragging = null, ticks = 0;
  var W = svg.clientWidth || 600, H = svg.clientHeight || 460;
  var gEdges = document.createElementNS(NS, "g"), gNodes = document.createElementNS(NS, "g");
  svg.appendChild(gEdges); svg.appendChild(gNodes);

  function load(uid, x, y) {
    if (expanded[uid]) return;
    expanded[uid] = true;
    status.textContent = "loading " + uid + "…";
    fetch(svg.dataset.url + "?uid=" + encodeURIComponent(uid), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.error) { status.textContent = data.error; return; }
        data.nodes.forEach(function (n) {
          if (!nodes[n.id]) {
            nodes[n.id] = {id: n.id, label: n.label, kind: n.kind, centre: !!n.centre && !Object.keys(nodes).length,
                           x: (x || W / 2) + (Math.random() - 0.5) * 120, y: (y || H / 2) + (Math.random() - 0.5) * 120, vx: 0, vy: 0};
          }
        });
        data.edges.forEach(function (e) {
          edges[e.source + "|" + e.type + "|" + e.target] = e;
        });
        status.textContent = Object.keys(nodes).length + " nodes, " + Object.keys(edges).length + " relationships" +
          (data.found ? "" : " (not in the graph store yet)");
        draw(); ticks = 300; run();
      })
      .catch(function (err) { status.textContent = "graph unavailable: " + err; });
  }

  function draw() {
    gEdges.innerHTML = ""; gNodes.innerHTML = "";
    Object.values(edges).forEach(function (e) {
      var l = document.createElementNS(NS, "line");
      l.setAttribute("stroke", e.status === "rejected" ? "#fca5a5" : e.status === "approved" ? "#4ade80" : "#cbd5e1");
      l.setAttribute("stroke-width", e.status === "approved" ? 2 : 1);
      if (e.status === "rejected") l.setAttribute("stroke-dasharray", "4 3");
      var t = document.createElementNS(NS, "title"); t.textContent = e.type + " (" + (e.status || "") + ")"; l.appendChild(t);
      e.el = l; gEdges.appendChild(l);
    });
    Object.values(nodes).forEach(function (n) {
      var g = document.createElementNS(NS, "g"); g.setAttribute("class", "node"); g.dataset.uid = n.id;
      var c = document.createElementNS(NS, "circle");
      c.setAttribute("r", n.centre ? 11 : 7); c.setAttribute("fill", colours[n.kind] || "#0891b2");
      c.setAttribute("stroke", expanded[n.id] ? "#111" : "#fff"); c.setAttribute("stroke-width", 1.5);
      var t = document.createElementNS(NS, "text"); t.setAttribute("x", 10); t.setAttribute("y", 4);
      t.textContent = (n.label || n.id).slice(0, 28);
      var tip = document.createElementNS(NS, "title"); tip.textContent = n.id + "\n" + n.label;
      g.appendChild(c); g.appendChild(t); g.appendChild(tip);
      g.addEventListener("mousedown", function (ev) { dragging = n; ev.preventDefault(); });
      g.addEventListener("click", function () { load(n.id, n.x, n.y); });
      g.addEventListener("dblclick", function () {
        if (n.kind !== "product" && n.kind !== "user") window.location = svg.dataset.entities + "?merged=1&q=" + encodeURIComponent(n.id);
      });
      n.el = g; gNodes.appendChild(g);
    });
    place();
  }

  function place() {
    Object.values(edges).forEach(function (e) {
      var a = nodes[e.source], b = nodes[e.target];
      if (!a || !b || !e.el) return;
      e.el.setAttribute("x1", a.x); e.el.setAttribute("y1", a.y); e.el.setAttribute("x2", b.x); e.el.setAttribute("y2", b.y);
    });
    Object.values(nodes).forEach(function (n) { if (n.el) n.el.setAttribute("transform", "translate(" + n.x + "," + n.y + ")"); });
  }

  function step() {
    var list = Object.values(nodes);
    for (var i = 0; i < list.length; i++) {
      for (var j = i + 1; j < list.length; j++) {
        var a = list[i], b = list[j], dx = a.x - b.x, dy = a.y - b.y, d2 = dx * dx + dy * dy + 0.01;
        var f = 900 / d2; a.vx += dx * f; a.vy += dy * f; b.vx -= dx * f; b.vy -= dy * f;
      }
    }
    Object.values(edges).forEach(function (e) {
      var a = nodes[e.source], b = nodes[e.target];
      if (!a || !b) return;
      var dx = b.x - a.x, dy = b.y - a.y, d = Math.sqrt(dx * dx + dy * dy) + 0.01, f = (d - 80) * 0.02;
      a.vx += dx / d * f; a.vy += dy / d * f; b.vx -= dx / d * f; b.vy -= dy / d * f;
    });
    list.forEach(function (n) {
      if (n === dragging) return;
      n.vx += (W / 2 - n.x) * 0.002; n.vy += (H / 2 - n.y) * 0.002;
      n.x = Math.max(12, Math.min(W - 12, n.x + Math.max(-20, Math.min(20, n.vx))));
      n.y = Math.max(12, Math.min(H - 12, n.y + Math.max(-20, Math.min(20, n.vy))));
      n.vx *= 0.6; n.vy *= 0.6;
    });
    place();
  }

  function run() { if (ticks-- > 0) { step(); window.requestAnimationFrame(run); } }

  svg.addEventListener("mousemove", function (ev) {
    if (!dragging) return;
    var r = svg.getBoundingClientRect(); dragging.x = ev.clientX - r.left; dragging.y = ev.clientY - r.top; place();
  });
  window.addEventListener("mouseup", function () { if (dragging) { dragging = null; ticks = 60; run(); } });
  load(svg.dataset.uid);
})();
