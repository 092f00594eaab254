// The layer page of the neuron browser: renders the neurons of window.NEURON_BROWSER[layer]
// (data/<layer>.js) a page at a time, with search, agreement filter and sorting.
(function () {
  "use strict";
  var root = document.getElementById("neurons");
  var layer = root.getAttribute("data-layer");
  var data = (window.NEURON_BROWSER || {})[layer];
  var $ = function (id) { return document.getElementById(id); };
  if (!data) {
    root.textContent = "No data for layer " + layer + " (data/" + layer + ".js is missing).";
    return;
  }
  var state = { concepts: data.concept_sets[0], query: "", filter: "all", sort: "id", page: 0,
                size: data.page_size };
  var camRows = {};
  data.cam_rows.forEach(function (row) { camRows[row] = true; });

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function option(select, value, label) { select.appendChild(el("option", { value: value }, label)); }
  function fmt(x, digits) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }
  function methods() { return data.methods[state.concepts] || []; }
  function cell(neuron) { return neuron.cs[state.concepts] || { c: [], ex: null, sem: null }; }

  // ---------------------------------------------------------------- controls
  var setSelect = $("concept-set"), sortSelect = $("sort"), sizeSelect = $("page-size");
  data.concept_sets.forEach(function (name) { option(setSelect, name, name); });
  [data.page_size, 200, 0].filter(function (v, i, all) { return all.indexOf(v) === i; })
    .forEach(function (size) { option(sizeSelect, String(size), size ? String(size) : "all"); });

  function fillSort() {
    var current = sortSelect.value || "id";
    sortSelect.innerHTML = "";
    option(sortSelect, "id", "neuron id");
    option(sortSelect, "ex-asc", "exact agreement, lowest first");
    option(sortSelect, "ex-desc", "exact agreement, highest first");
    option(sortSelect, "sem-asc", "semantic agreement, lowest first");
    option(sortSelect, "sem-desc", "semantic agreement, highest first");
    methods().forEach(function (m, i) { option(sortSelect, "score-" + i, "top score: " + m.name); });
    sortSelect.value = Array.prototype.some.call(sortSelect.options, function (o) {
      return o.value === current; }) ? current : "id";
    state.sort = sortSelect.value;
  }

  // ---------------------------------------------------------------- selection
  function matches(neuron) {
    var c = cell(neuron);
    if (state.filter === "agree" && c.ex !== 1) { return false; }
    if (state.filter === "disagree" && c.ex === 1) { return false; }
    var q = state.query.trim().toLowerCase();
    if (!q) { return true; }
    if (String(neuron.id) === q) { return true; }
    if (neuron.label && neuron.label.toLowerCase().indexOf(q) >= 0) { return true; }
    return c.c.some(function (rows) {
      return rows.some(function (row) { return row[0].toLowerCase().indexOf(q) >= 0; });
    });
  }
  function sortKey(neuron) {
    var c = cell(neuron);
    if (state.sort.indexOf("ex") === 0) { return c.ex === null ? -1 : c.ex; }
    if (state.sort.indexOf("sem") === 0) { return c.sem === null ? -2 : c.sem; }
    if (state.sort.indexOf("score-") === 0) {
      var rows = c.c[Number(state.sort.slice(6))] || [];
      return rows.length ? rows[0][1] : -Infinity;
    }
    return neuron.id;
  }
  function selection() {
    var chosen = data.neurons.filter(matches);
    if (state.sort !== "id") {
      var sign = (state.sort.slice(-4) === "-asc") ? 1 : -1;
      chosen = chosen.slice().sort(function (a, b) {
        var d = sortKey(a) - sortKey(b);
        return d !== 0 ? sign * d : a.id - b.id;
      });
    }
    return chosen;
  }

  // ---------------------------------------------------------------- a neuron's panel
  function thumb(folder, row, view) {
    var id = data.image_ids[String(row)] || String(row);
    var img = el("img", { src: "thumbs/" + folder + "/" + row + "." + data.thumb_ext, alt: id,
                          title: id + " (" + view + ")", loading: "lazy", "class": "thumb",
                          "data-view": view });
    var anchor = data.convis_rows[String(row)];
    if (!anchor) { return img; }
    var link = el("a", { href: "convis.html#" + anchor, title: "ConVis maps of " + id });
    link.appendChild(img);
    return link;
  }
  function viewRow(name, folder, rows, view) {
    var line = el("div", { "class": "view-row", "data-view": view });
    line.appendChild(el("span", { "class": "view-name" }, name));
    rows.forEach(function (row) { line.appendChild(thumb(folder, row, view)); });
    return line;
  }
  function panel(neuron) {
    var c = cell(neuron);
    var box = el("article", { "class": "neuron", id: "neuron-" + neuron.id, "data-neuron": neuron.id });
    var head = el("h3", {}, "Neuron " + neuron.id);
    if (neuron.label) { head.appendChild(el("span", { "class": "badge label" }, "class: " + neuron.label)); }
    if (c.ex !== null) {
      head.appendChild(el("span", { "class": "badge " + (c.ex === 1 ? "agree" : "disagree"),
        title: "share of methods naming the most common top concept" },
        "exact agreement " + fmt(100 * c.ex, 0) + "%"));
    }
    if (c.sem !== null) {
      head.appendChild(el("span", { "class": "badge", title: "mean pairwise cosine of the top concepts" },
        "semantic " + fmt(c.sem, 2)));
    }
    box.appendChild(head);
    var views = el("div", { "class": "views" });
    data.views.forEach(function (view) { views.appendChild(viewRow(view, view, neuron.img[view], view)); });
    var camView = data.views.filter(function (v) { return v.indexOf("gradcam") === 0; })[0] || data.views[0];
    var camList = (neuron.img[camView] || []).filter(function (row) { return camRows[row]; });
    if (camList.length) { views.appendChild(viewRow("Grad-CAM", "cam", camList, "cam")); }
    box.appendChild(views);

    var table = el("table", { "class": "methods" });
    var header = el("tr"), body = el("tr");
    methods().forEach(function (m, i) {
      header.appendChild(el("th", { title: m.family }, m.name));
      var td = el("td", { "data-method": m.name });
      (c.c[i] || []).forEach(function (row) {
        var span = el("span", { "class": "concept " + (row[2] ? "selected" : "other") });
        span.appendChild(el("span", { "class": "text" }, row[0]));
        span.appendChild(el("span", { "class": "score" }, fmt(row[1], 3)));
        td.appendChild(span);
      });
      body.appendChild(td);
    });
    table.appendChild(header);
    table.appendChild(body);
    box.appendChild(table);

    (c.st || []).forEach(function (group) {
      var line = el("div", { "class": "stability" });
      line.appendChild(el("strong", {}, "Stability over k (" + group.label + "): "));
      group.ks.forEach(function (entry, i) {
        var text = (i ? " · " : "") + "k=" + entry[0] + " [" + entry[1].join(", ") + "]" +
          (i ? " Jaccard " + fmt(entry[2], 2) : "");
        line.appendChild(el("span", {}, text));
      });
      box.appendChild(line);
    });
    if (c.ev) {
      var metrics = el("table", { "class": "metrics" });
      var top = el("tr");
      top.appendChild(el("th", {}, "metric"));
      var names = Object.keys(c.ev);
      names.forEach(function (name) { top.appendChild(el("th", {}, name)); });
      metrics.appendChild(top);
      data.metrics.forEach(function (metric) {
        if (!names.some(function (name) { return c.ev[name][metric] !== undefined; })) { return; }
        var tr = el("tr");
        tr.appendChild(el("th", {}, metric));
        names.forEach(function (name) { tr.appendChild(el("td", {}, fmt(c.ev[name][metric], 3))); });
        metrics.appendChild(tr);
      });
      var wrap = el("div", { "class": "metrics" });
      wrap.appendChild(el("strong", {}, "Evaluation against the class (0..1)"));
      wrap.appendChild(metrics);
      box.appendChild(wrap);
    }
    return box;
  }

  // ---------------------------------------------------------------- rendering
  function render() {
    var chosen = selection();
    var size = state.size > 0 ? state.size : chosen.length || 1;
    var pages = Math.max(1, Math.ceil(chosen.length / size));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * size;
    var shown = chosen.slice(start, start + size);
    var fragment = document.createDocumentFragment();
    shown.forEach(function (neuron) { fragment.appendChild(panel(neuron)); });
    root.innerHTML = "";
    root.appendChild(fragment);
    $("count").textContent = chosen.length + " of " + data.neurons.length + " neurons" +
      (pages > 1 ? "; page " + (state.page + 1) + " of " + pages : "");
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
  }

  setSelect.addEventListener("change", function () {
    state.concepts = setSelect.value; state.page = 0; fillSort(); render(); });
  $("search").addEventListener("input", function (event) {
    state.query = event.target.value; state.page = 0; render(); });
  $("filter").addEventListener("change", function (event) {
    state.filter = event.target.value; state.page = 0; render(); });
  sortSelect.addEventListener("change", function () { state.sort = sortSelect.value; state.page = 0; render(); });
  sizeSelect.addEventListener("change", function () { state.size = Number(sizeSelect.value); state.page = 0; render(); });
  $("prev").addEventListener("click", function () { state.page -= 1; render(); });
  $("next").addEventListener("click", function () { state.page += 1; render(); });
  fillSort();
  render();
}());
