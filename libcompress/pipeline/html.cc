// report.html: one self-contained page. The report's JSON is embedded as
// data and the page's script renders it, so the page shows exactly the
// figures of report.json (the browser test reads them back from the DOM:
// every figure sits in an element with an id and its raw value in data-value).
#include <string>

#include "modelpress/pipeline.h"

namespace modelpress::pipeline {
namespace {

constexpr const char* kHead = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>modelpress compress report</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; }
td, th { padding: .2em .7em; text-align: left; vertical-align: middle; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #f6f6f6; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .6em 1em; min-width: 10em; }
.card .label { color: #666; font-size: .85em; }
.card .value { font-size: 1.4em; font-weight: 600; }
.muted { color: #777; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
.hist { display: inline-block; margin: 0 1.5em 1em 0; vertical-align: top; }
#errors { color: #b00; white-space: pre-wrap; }
.legend span { display: inline-block; width: .9em; height: .9em; margin: 0 .3em 0 1em; vertical-align: middle; }
</style>
<script>
// Script errors are written into the page, where a test (or a reader) sees them.
window.onerror = function (msg, src, line) {
  var e = document.getElementById('errors');
  if (e) e.textContent += 'error: ' + msg + ' (line ' + line + ')\n';
};
</script>
</head>
<body data-rendered="no">
<h1>modelpress compress report</h1>
<div class="muted" id="subtitle"></div>
<div id="errors"></div>
<h2>Sizes</h2>
<div class="cards" id="cards"></div>
<div id="size-chart"></div>
<h2>Accuracy</h2>
<div id="accuracy"></div>
<h2>Layers</h2>
<p class="muted">Sparsity is the share of exact zeros of each linear weight; SQNR is the weight's
signal-to-quantization-noise ratio.</p>
<div id="layers"></div>
<h2>Weight histograms</h2>
<p class="muted">Nonzero values of the largest weights; exact zeros are counted apart.</p>
<div class="legend"><span style="background:#9aa7b8"></span>before<span style="background:#e08a3c"></span>after pruning<span style="background:#2f7ebc"></span>after quantization</div>
<div id="histograms"></div>
<h2>Activations</h2>
<div id="activations"></div>
<h2>Stages</h2>
<div id="stages"></div>
<h2>Recipe</h2>
<pre id="recipe"></pre>
<script type="application/json" id="report-data">
)html";

constexpr const char* kTail = R"html(
</script>
<script>
(function () {
  'use strict';
  var R = JSON.parse(document.getElementById('report-data').textContent);
  var SVG = 'http://www.w3.org/2000/svg';

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function bytes(n) {
    var units = ['B', 'kB', 'MB', 'GB', 'TB'], u = 0, v = n;
    while (v >= 1000 && u < 4) { v /= 1000; u++; }
    return u === 0 ? n + ' B' : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) + ' ' + units[u];
  }
  function pct(f) { return (100 * f).toFixed(1) + '%'; }
  function db(v) { return typeof v === 'number' ? v.toFixed(1) + ' dB' : (v === undefined ? '-' : String(v)); }
  // A figure: its text, and its raw value in data-value for machines.
  function figure(tag, id, value, text) {
    var e = el(tag, { id: id }, text);
    e.setAttribute('data-value', String(value));
    return e;
  }
  function card(id, label, value, text) {
    var c = el('div', { 'class': 'card' });
    c.appendChild(el('div', { 'class': 'label' }, label));
    var v = figure('div', id, value, text);
    v.className = 'value';
    c.appendChild(v);
    document.getElementById('cards').appendChild(c);
  }
  function table(head, numeric) {
    var t = el('table'), tr = el('tr');
    head.forEach(function (h, i) { tr.appendChild(el('th', numeric[i] ? { 'class': 'num' } : {}, h)); });
    t.appendChild(tr);
    return t;
  }

  var S = R.sizes;
  document.getElementById('subtitle').textContent =
      R.input.model + ' with recipe ' + R.recipe.file + (R.recipe.name ? ' (' + R.recipe.name + ')' : '');
  card('onnx-before', 'ONNX before', S.onnx_before, bytes(S.onnx_before));
  card('onnx-after', 'ONNX after', S.onnx_after, bytes(S.onnx_after));
  card('artifact', 'artifact (.mpk)', S.artifact, bytes(S.artifact));
  card('ratio', 'ONNX before / artifact', S.ratio_onnx_before_to_artifact, S.ratio_onnx_before_to_artifact.toFixed(1) + '\u00d7');

  // Size bars: the outputs and, for scale, general compressors of the input file.
  var bars = [['ONNX before', 'bar-onnx-before', S.onnx_before, '#9aa7b8'],
              ['ONNX after', 'bar-onnx-after', S.onnx_after, '#e08a3c'],
              ['artifact', 'bar-artifact', S.artifact, '#2f7ebc']];
  if (S.reference) {
    S.reference.compressors.forEach(function (c, i) {
      bars.push([c.name + ' of input', 'ref-' + i, c.bytes, '#b8b8b8']);
    });
  }
  var max = Math.max.apply(null, bars.map(function (b) { return b[2]; })) || 1;
  var chart = svg('svg', { width: 640, height: 24 * bars.length + 8, role: 'img' });
  bars.forEach(function (b, i) {
    var y = 4 + 24 * i, w = Math.max(1, 380 * b[2] / max);
    chart.appendChild(svg('text', { x: 0, y: y + 14 }, b[0]));
    chart.appendChild(svg('rect', { x: 150, y: y, width: w, height: 18, fill: b[3] }));
    var t = svg('text', { x: 156 + w, y: y + 14, id: b[1] }, bytes(b[2]));
    t.setAttribute('data-value', String(b[2]));
    chart.appendChild(t);
  });
  document.getElementById('size-chart').appendChild(chart);

  var acc = document.getElementById('accuracy');
  if (R.accuracy) {
    var A = R.accuracy, at = table(['', 'top-1', 'correct'], [false, true, true]);
    [['before', A.top1_before, A.correct_before], ['after', A.top1_after, A.correct_after]].forEach(function (r) {
      var tr = el('tr');
      tr.appendChild(el('td', {}, r[0]));
      var c = figure('td', 'top1-' + r[0], r[1], pct(r[1]));
      c.className = 'num';
      tr.appendChild(c);
      tr.appendChild(el('td', { 'class': 'num' }, r[2] + ' / ' + A.samples));
      at.appendChild(tr);
    });
    acc.appendChild(at);
    acc.appendChild(el('p', { 'class': 'muted' }, A.samples + ' samples of ' + A.data + ', reference executor'));
  } else {
    acc.appendChild(el('p', { 'class': 'muted', id: 'no-accuracy' }, 'No evaluation data was given (--eval-data, --eval-labels).'));
  }

  // Per-layer sparsity bars and SQNR.
  var lt = table(['tensor', 'shape', 'parameters', 'sparsity before', 'sparsity after', '', 'type', 'SQNR'],
                 [false, false, true, true, true, false, false, true]);
  R.layers.forEach(function (L, i) {
    var tr = el('tr', { id: 'layer-' + i });
    tr.appendChild(el('td', { id: 'layer-' + i + '-name' }, L.name));
    tr.appendChild(el('td', {}, '[' + (L.shape_after || L.shape_before).join(', ') + ']'));
    var p = figure('td', 'layer-' + i + '-parameters', L.parameters_after === undefined ? 0 : L.parameters_after,
                   (L.parameters_after === undefined ? 0 : L.parameters_after).toLocaleString('en-US'));
    p.className = 'num';
    tr.appendChild(p);
    var sb = figure('td', 'layer-' + i + '-sparsity-before', L.sparsity_before, pct(L.sparsity_before));
    sb.className = 'num';
    tr.appendChild(sb);
    var after = L.sparsity_after === undefined ? 1 : L.sparsity_after;
    var sa = figure('td', 'layer-' + i + '-sparsity-after', after, L.onnx_tensor ? pct(after) : 'removed');
    sa.className = 'num';
    tr.appendChild(sa);
    var bar = el('td'), s = svg('svg', { width: 160, height: 12 });
    s.appendChild(svg('rect', { x: 0, y: 0, width: 160, height: 12, fill: '#e6e6e6' }));
    s.appendChild(svg('rect', { x: 0, y: 0, width: 160 * after, height: 12, fill: '#e08a3c' }));
    bar.appendChild(s);
    tr.appendChild(bar);
    tr.appendChild(el('td', {}, L.dtype_after || ''));
    var q = figure('td', 'layer-' + i + '-sqnr', L.sqnr_db === undefined ? '' : L.sqnr_db, db(L.sqnr_db));
    q.className = 'num';
    tr.appendChild(q);
    lt.appendChild(tr);
  });
  document.getElementById('layers').appendChild(lt);
  var T = R.totals;
  document.getElementById('layers').appendChild(figure('p', 'total-sparsity-after',
      T.parameters_after ? T.zeros_after / T.parameters_after : 0,
      'Overall: ' + pct(T.parameters_before ? T.zeros_before / T.parameters_before : 0) + ' \u2192 ' +
      pct(T.parameters_after ? T.zeros_after / T.parameters_after : 0) + ' zeros over ' +
      T.parameters_after.toLocaleString('en-US') + ' weights.'));

  // Histograms: three series on one axis per layer.
  R.histograms.forEach(function (H, i) {
    var box = el('div', { 'class': 'hist', id: 'hist-' + i });
    box.appendChild(el('div', {}, H.name + ' [' + H.shape.join(', ') + ']'));
    var series = [['before', '#9aa7b8'], ['after_prune', '#e08a3c'], ['after_quant', '#2f7ebc']].filter(function (s) {
      return H[s[0]];
    });
    var top = 1;
    series.forEach(function (s) { top = Math.max(top, Math.max.apply(null, H[s[0]].counts)); });
    var W = 300, Hh = 120, n = H.before.counts.length, g = svg('svg', { width: W, height: Hh + 18 });
    series.forEach(function (s, k) {
      var c = H[s[0]].counts, pts = [];
      for (var b = 0; b < n; b++) {
        var x0 = W * b / n, x1 = W * (b + 1) / n, y = Hh - Hh * c[b] / top;
        pts.push(x0.toFixed(1) + ',' + y.toFixed(1), x1.toFixed(1) + ',' + y.toFixed(1));
      }
      g.appendChild(svg('polyline', { points: '0,' + Hh + ' ' + pts.join(' ') + ' ' + W + ',' + Hh, fill: k === 0 ? s[1] : 'none',
                                      'fill-opacity': k === 0 ? 0.5 : 1, stroke: s[1], 'stroke-width': 1.5 }));
    });
    g.appendChild(svg('text', { x: 0, y: Hh + 14 }, H.before.min.toPrecision(3)));
    g.appendChild(svg('text', { x: W - 40, y: Hh + 14 }, H.before.max.toPrecision(3)));
    var zeros = series.map(function (s) { return s[0].replace('_', ' ') + ' ' + H[s[0]].zeros.toLocaleString('en-US'); });
    box.appendChild(g);
    box.appendChild(el('div', { 'class': 'muted' }, 'zeros: ' + zeros.join(', ')));
    document.getElementById('histograms').appendChild(box);
  });

  var act = document.getElementById('activations');
  if (R.activations && R.activations.length) {
    var qt = table(['tensor', 'type', 'range', 'SQNR'], [false, false, true, true]);
    R.activations.forEach(function (a, i) {
      var tr = el('tr');
      tr.appendChild(el('td', {}, a.name));
      tr.appendChild(el('td', {}, a.dtype));
      tr.appendChild(el('td', { 'class': 'num' }, '[' + a.rmin.toPrecision(4) + ', ' + a.rmax.toPrecision(4) + ']'));
      var c = figure('td', 'activation-' + i + '-sqnr', a.sqnr_db === undefined ? '' : a.sqnr_db, db(a.sqnr_db));
      c.className = 'num';
      tr.appendChild(c);
      qt.appendChild(tr);
    });
    act.appendChild(qt);
  } else {
    act.appendChild(el('p', { 'class': 'muted' }, 'Activations stayed in float (no static quantization).'));
  }

  var st = table(['#', 'stage', 'seconds'], [true, false, true]);
  R.stages.forEach(function (s, i) {
    var tr = el('tr', { id: 'stage-' + i });
    tr.appendChild(el('td', { 'class': 'num' }, String(i + 1)));
    tr.appendChild(el('td', {}, s.stage));
    tr.appendChild(el('td', { 'class': 'num' }, s.seconds.toFixed(3)));
    st.appendChild(tr);
  });
  document.getElementById('stages').appendChild(st);
  document.getElementById('recipe').textContent = R.recipe.text;
  document.body.setAttribute('data-rendered', 'yes');
})();
</script>
</body>
</html>
)html";

}  // namespace

std::string ReportHtml(const std::string& report_json) {
  // Inside <script>, "</script" or "<!--" in a string would end or confuse the
  // element: every '<' is written as the JSON escape \u003c, which parses back the same.
  std::string data;
  data.reserve(report_json.size());
  for (char c : report_json) {
    if (c == '<') {
      data += "\\u003c";
    } else {
      data += c;
    }
  }
  return std::string(kHead) + data + kTail;
}

}  // namespace modelpress::pipeline
