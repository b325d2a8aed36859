// codiff-bench report: sortable and filterable tables, synchronised zoomable crops. No dependencies.
(function () {
  'use strict';

  function sortKey(cell) {
    var v = cell.getAttribute('data-v');
    if (v !== null) { return v === '' ? NaN : parseFloat(v); }
    var t = cell.textContent.trim();
    var n = parseFloat(t.replace(/[,%+]/g, ''));
    return (/^[-+]?[\d.,]+%?$/.test(t) && !isNaN(n)) ? n : t.toLowerCase();
  }

  function compare(a, b, asc) {
    var aNum = typeof a === 'number', bNum = typeof b === 'number';
    if (aNum && isNaN(a)) { return bNum && isNaN(b) ? 0 : 1; }  // missing values last
    if (bNum && isNaN(b)) { return -1; }
    if (aNum !== bNum) { return aNum ? -1 : 1; }
    var r = a < b ? -1 : (a > b ? 1 : 0);
    return asc ? r : -r;
  }

  function makeSortable(table) {
    var head = table.tHead;
    if (!head || !table.tBodies.length) { return; }
    var headers = head.rows[head.rows.length - 1].cells;
    Array.prototype.forEach.call(headers, function (th, index) {
      th.addEventListener('click', function () {
        var asc = th.getAttribute('data-dir') !== 'asc';
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', asc ? 'asc' : 'desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var keyed = rows.map(function (row, i) { return [sortKey(row.cells[index]), i, row]; });
        keyed.sort(function (x, y) { return compare(x[0], y[0], asc) || x[1] - y[1]; });
        keyed.forEach(function (k) { body.appendChild(k[2]); });
      });
    });
  }

  function makeFilter(input) {
    var holder = input.nextElementSibling;
    var table = holder && holder.querySelector('table');
    if (!table) { return; }
    input.addEventListener('input', function () {
      var needle = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = needle !== '' && row.textContent.toLowerCase().indexOf(needle) < 0;
      });
    });
  }

  // Every tile of a panel shows the same crop: centre (cx, cy) in image fractions, zoom relative to "fit".
  function makeZoomable(panel) {
    var w = parseFloat(panel.getAttribute('data-w')) || 1, h = parseFloat(panel.getAttribute('data-h')) || 1;
    var state = { zoom: 1, cx: 0.5, cy: 0.5 };
    var viewports = panel.querySelectorAll('.vp');
    var range = panel.querySelector('input.zoom'), label = panel.querySelector('.zoom-value');
    var reset = panel.querySelector('button.reset');

    function place(vp) {
      var img = vp.querySelector('img');
      if (!img) { return; }
      var vw = vp.clientWidth, vh = vp.clientHeight;
      var scale = Math.min(vw / w, vh / h) * state.zoom;
      var iw = w * scale, ih = h * scale;
      var x = iw > vw ? Math.min(0, Math.max(vw - iw, vw / 2 - state.cx * iw)) : (vw - iw) / 2;
      var y = ih > vh ? Math.min(0, Math.max(vh - ih, vh / 2 - state.cy * ih)) : (vh - ih) / 2;
      img.style.width = iw + 'px';
      img.style.height = ih + 'px';
      img.style.left = x + 'px';
      img.style.top = y + 'px';
    }

    function apply() {
      Array.prototype.forEach.call(viewports, place);
      var first = viewports[0];
      var scale = first ? Math.min(first.clientWidth / w, first.clientHeight / h) * state.zoom : 1;
      panel.classList.toggle('pixelated', scale > 1);  // magnified: show pixels (and 8x8 blocks), never smoothing
      if (range) { range.value = String(state.zoom); }
      if (label) { label.textContent = state.zoom.toFixed(1) + '\u00d7'; }
    }

    function setZoom(z) { state.zoom = Math.max(1, Math.min(16, z)); apply(); }

    Array.prototype.forEach.call(viewports, function (vp) {
      vp.addEventListener('mousemove', function (event) {
        var r = vp.getBoundingClientRect();
        state.cx = Math.max(0, Math.min(1, (event.clientX - r.left) / r.width));
        state.cy = Math.max(0, Math.min(1, (event.clientY - r.top) / r.height));
        apply();
      });
      vp.addEventListener('wheel', function (event) {
        event.preventDefault();
        setZoom(state.zoom * (event.deltaY < 0 ? 1.25 : 0.8));
      }, { passive: false });
    });
    if (range) { range.addEventListener('input', function () { setZoom(parseFloat(range.value)); }); }
    if (reset) { reset.addEventListener('click', function () { state.cx = 0.5; state.cy = 0.5; setZoom(1); }); }
    window.addEventListener('resize', apply);
    apply();
  }

  // printing shows every folded table and list: open each <details> before, restore them after
  var folded = [];
  window.addEventListener('beforeprint', function () {
    folded = Array.prototype.filter.call(document.querySelectorAll('details'), function (d) { return !d.open; });
    folded.forEach(function (d) { d.open = true; });
  });
  window.addEventListener('afterprint', function () { folded.forEach(function (d) { d.open = false; }); });

  document.querySelectorAll('table.sortable').forEach(makeSortable);
  document.querySelectorAll('input.filter').forEach(makeFilter);
  document.querySelectorAll('.cmp').forEach(makeZoomable);
}());
