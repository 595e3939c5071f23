/* autonet's graph explorer: the layouts come from Graphviz (SVG, made in Python);
   this script only swaps them, shows facts, searches and walks the backward pass. */
function autonetExplorer(root) {
  "use strict";
  const data = JSON.parse(root.querySelector(".ae-data").textContent);
  root.insertAdjacentHTML("beforeend",
    '<div class="ae-bar">' +
    '<button class="ae-view" data-view="none" title="every module as one box">collapse all</button>' +
    '<button class="ae-view" data-view="base" title="the starting depth">layers</button>' +
    '<button class="ae-view" data-view="all" title="every op">expand all</button>' +
    '<input class="ae-search" type="search" placeholder="search parameters or modules">' +
    '<span class="ae-found"></span>' +
    '<button class="ae-walk" title="the chain rule, one node at a time, in the engine\'s order">backward walk</button>' +
    '<button class="ae-prev" title="previous step">&#9664;</button>' +
    '<button class="ae-next" title="next step">&#9654;</button>' +
    '<button class="ae-end" title="to the end">end</button>' +
    '<span class="ae-status"></span></div>' +
    '<div class="ae-main"><div class="ae-graph"></div>' +
    '<div class="ae-info">Hover or click a box. Click a module box to open it; click an open ' +
    'module\'s frame to close it.</div></div>');
  const graph = root.querySelector(".ae-graph");
  const info = root.querySelector(".ae-info");
  const status = root.querySelector(".ae-status");
  const search = root.querySelector(".ae-search");
  const found = root.querySelector(".ae-found");
  let pinned = null;
  let step = -1;            // -1: not walking; steps.length: walked to the end

  function shapeText(shape) {
    return "(" + shape.join(", ") + (shape.length === 1 ? ",)" : ")");
  }
  function escape(text) {
    return String(text).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  }
  function statsText(stats) {
    if (!stats) return null;
    if (stats.mean === undefined) return stats.summary;
    const f = x => Number(x).toPrecision(3);
    const spread = "mean " + f(stats.mean) + ", std " + f(stats.std);
    if (stats.summary.startsWith("norm ")) return stats.summary + "\n" + spread;   /* already has min, max */
    return stats.summary + "\n" + spread + ", norm " + f(stats.norm);
  }
  function titleOf(g) {
    const title = g.querySelector("title");
    return title ? title.textContent : "";
  }
  function nodes() { return graph.querySelectorAll("g.node"); }
  function element(id) {
    for (const g of nodes()) if (titleOf(g) === id) return g;
    return null;
  }
  function visible(id) {        /* the item's own box, or the closed module box holding it */
    const own = element(id);
    if (own) return own;
    const item = data.items[id];
    if (!item) return null;
    for (const call of item.calls) {
      const box = element("module" + call);
      if (box) return box;
    }
    return null;
  }

  function describe(id) {
    let rows = [];
    let heading;
    if (id.startsWith("module")) {
      const call = data.calls[id.slice(6)];
      if (!call) return;
      heading = call.label;
      rows = [["module", call.type + (call.path ? " at " + call.path : "")],
              ["parameters", call.parameters.join(", ") || "none"],
              ["", data.views["open:" + id.slice(6)] ? "click to open" : "use expand all to see inside"]];
    } else {
      const item = data.items[id];
      if (!item) return;
      heading = item.title;
      rows.push(["kind", item.kind + (item.op ? " (op " + item.op + ")" : "")]);
      if (item.name && item.name !== item.title) rows.push(["name", item.name]);
      rows.push(["shape", shapeText(item.shape)], ["dtype", item.dtype]);
      if (item.made) rows.push(["used as", item.made.join("; ") + ", made without recording (no gradient)"]);
      rows.push(["module", item.path || "(outside every module)"]);
      rows.push(["value", statsText(item.value) || "not kept by the graph"]);
      rows.push(["gradient", statsText(item.grad) ||
        (data.walked ? "none reaches it" : "not known: run explore() before backward() (or after backward(retain_graph=True))")]);
    }
    info.innerHTML = "<h3>" + escape(heading) + "</h3><dl>" + rows.map(([k, v]) =>
      (k ? "<dt>" + escape(k) + "</dt>" : "") + '<dd class="ae-' + (k || "hint").replace(" ", "-") + '">' +
      escape(v).replace(/\n/g, "<br>") + "</dd>").join("") + "</dl>";
  }

  function show(name) {
    const key = data.views[name];
    if (!key) return false;
    graph.innerHTML = data.layouts[key];
    graph.dataset.view = name;
    wire();
    highlightSearch();
    if (step >= 0) mark();
    return true;
  }

  function wire() {
    for (const g of nodes()) {
      const id = titleOf(g);
      if (id.startsWith("module")) g.classList.add("ae-module");
      if (id === pinned) g.classList.add("ae-pinned");
      g.addEventListener("mouseenter", () => { if (!pinned) describe(id); });
      g.addEventListener("click", event => {
        event.stopPropagation();
        if (id.startsWith("module")) {
          if (!show("open:" + id.slice(6))) status.textContent = "this module's own view was not laid out (too many modules, or Graphviz failed on it): use expand all";
          return;
        }
        pinned = pinned === id ? null : id;
        for (const other of nodes()) other.classList.toggle("ae-pinned", titleOf(other) === pinned);
        describe(id);
      });
    }
    for (const g of graph.querySelectorAll("g.cluster")) {
      const call = titleOf(g).replace("cluster_", "");
      g.addEventListener("click", event => {
        event.stopPropagation();
        show("close:" + call);
      });
    }
  }

  function highlightSearch() {
    for (const g of graph.querySelectorAll(".ae-hit")) g.classList.remove("ae-hit");
    const query = search.value.trim().toLowerCase();
    if (!query) { found.textContent = ""; return; }
    let hits = 0;
    for (const [id, item] of Object.entries(data.items)) {
      const names = [item.name || "", item.kind === "parameter" ? item.title : ""];
      if (names.some(n => n.toLowerCase().includes(query))) {
        hits += 1;
        const g = visible(id);
        if (g) g.classList.add("ae-hit");
      }
    }
    for (const [call, facts] of Object.entries(data.calls)) {
      if ((facts.label + " " + facts.path).toLowerCase().includes(query)) {
        hits += 1;
        for (const g of nodes()) if (titleOf(g) === "module" + call) g.classList.add("ae-hit");
        for (const g of graph.querySelectorAll("g.cluster"))
          if (titleOf(g) === "cluster_" + call) g.classList.add("ae-hit");
      }
    }
    found.textContent = hits + (hits === 1 ? " match" : " matches");
  }

  function mark() {
    for (const g of graph.querySelectorAll(".ae-done, .ae-current, .ae-sending"))
      g.classList.remove("ae-done", "ae-current", "ae-sending");
    const steps = data.steps;
    for (let i = 0; i < Math.min(step, steps.length); i++) {
      const g = visible(steps[i]);
      if (g) g.classList.add("ae-done");
    }
    if (step < steps.length) {
      const id = steps[step];
      const g = visible(id);
      if (g) { g.classList.add("ae-current"); g.scrollIntoView({block: "center", inline: "nearest"}); }
      for (const edge of graph.querySelectorAll("g.edge"))
        if (titleOf(edge).endsWith("->" + id)) edge.classList.add("ae-sending");
      describe(id);
      const grad = data.items[id] && statsText(data.items[id].grad);
      status.textContent = "step " + (step + 1) + " of " + steps.length + ": " + data.items[id].title +
        (grad ? ", gradient arriving: " + grad.split("\n")[0] : "");
    } else {
      status.textContent = "done: " + steps.length + " of " + steps.length +
        " steps; every leaf now holds its gradient" + (data.walked ? "" : " (values not kept)");
    }
  }

  for (const button of root.querySelectorAll(".ae-view"))
    button.addEventListener("click", () => {
      if (!show(button.dataset.view)) status.textContent = "Graphviz could not lay out this view";
    });
  search.addEventListener("input", highlightSearch);
  root.querySelector(".ae-walk").addEventListener("click", () => {
    if (!data.steps.length) { status.textContent = "nothing to walk: the root has no graph"; return; }
    step = 0;
    if (!show("all")) mark();   /* else ops stay in their closed modules' boxes */
  });
  root.querySelector(".ae-next").addEventListener("click", () => {
    if (step < 0) return;
    step = Math.min(step + 1, data.steps.length);
    mark();
  });
  root.querySelector(".ae-prev").addEventListener("click", () => {
    if (step <= 0) return;
    step -= 1;
    mark();
  });
  root.querySelector(".ae-end").addEventListener("click", () => {
    if (step < 0) return;
    step = data.steps.length;
    mark();
  });
  show("base") || show("all") || show("none");
  if (data.truncated) status.textContent = data.truncated + " more nodes not drawn (max_nodes)";
}
