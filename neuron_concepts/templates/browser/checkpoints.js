// Checkpoint sites of the neuron browser: under each neuron's panel (drawn by browser.js), the
// top concept of every method in this checkpoint and in the other checkpoints of its
// architecture, side by side (the layer data's cs[concept set].ckpt: {tag: {method: concept}}).
// Loaded after browser.js; it draws the rows for the panels shown and again whenever
// browser.js redraws the list (a new page, search or concept set).
(function () {
  "use strict";
  var root = document.getElementById("neurons");
  if (!root) { return; }
  var layer = root.getAttribute("data-layer");
  var data = (window.NEURON_BROWSER || {})[layer];
  if (!data) { return; }
  var byId = {};
  data.neurons.forEach(function (neuron) { byId[String(neuron.id)] = neuron; });

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function concepts() { return document.getElementById("concept-set").value || data.concept_sets[0]; }

  function sideBySide(panel) {
    if (panel.querySelector(".checkpoints")) { return; }
    var neuron = byId[panel.getAttribute("data-neuron")];
    var set = concepts();
    var cell = neuron && neuron.cs[set];
    if (!cell || !cell.ckpt) { return; }
    var methods = data.methods[set] || [];
    var table = el("table", { "class": "metrics" });
    var head = el("tr");
    head.appendChild(el("th", {}, "checkpoint"));
    methods.forEach(function (m) { head.appendChild(el("th", {}, m.name)); });
    table.appendChild(head);
    var own = el("tr", { "data-checkpoint": "" });
    own.appendChild(el("th", {}, "this one"));
    methods.forEach(function (m, i) {
      var rows = cell.c[i] || [];
      own.appendChild(el("td", { "data-method": m.name }, rows.length ? rows[0][0] : "–"));
    });
    table.appendChild(own);
    Object.keys(cell.ckpt).forEach(function (tag) {
      var tr = el("tr", { "data-checkpoint": tag });
      tr.appendChild(el("th", {}, tag));
      methods.forEach(function (m) {
        var concept = cell.ckpt[tag][m.name];
        tr.appendChild(el("td", { "data-method": m.name }, concept === undefined ? "–" : concept));
      });
      table.appendChild(tr);
    });
    var wrap = el("div", { "class": "metrics checkpoints" });
    wrap.appendChild(el("strong", {}, "Top concept in each checkpoint"));
    wrap.appendChild(table);
    panel.appendChild(wrap);
  }
  function drawAll() { Array.prototype.forEach.call(root.querySelectorAll(".neuron"), sideBySide); }

  drawAll();
  new MutationObserver(drawAll).observe(root, { childList: true });
}());
