// Reports: draws each chart from the table beside it (the table is the data; without script, or for
// a screen reader, the table is the whole of it). Chart.js is vendored in vendor/chartjs/.
(function () {
  "use strict";
  if (typeof window.Chart === "undefined") return;
  var COLORS = ["#1f5fa8", "#b35c00", "#2e7d32", "#6a1b9a"];

  function readTable(table) {
    var labels = [];
    var series = {};
    var order = [];
    table.querySelectorAll("tbody tr").forEach(function (row) {
      labels.push(row.cells[0].textContent.trim());
      row.querySelectorAll("td[data-value]").forEach(function (cell, index) {
        var name = cell.getAttribute("data-series") || table.querySelector("thead th:nth-child(" + (cell.cellIndex + 1) + ")").textContent.trim();
        if (!(name in series)) { series[name] = []; order.push(name); }
        var raw = cell.getAttribute("data-value");
        series[name].push(raw === "" ? null : Number(raw));
      });
    });
    return {
      labels: labels,
      datasets: order.map(function (name, i) {
        return { label: name, data: series[name], backgroundColor: COLORS[i % COLORS.length], borderColor: COLORS[i % COLORS.length] };
      }),
    };
  }

  // A long label beside a horizontal bar (a rejection reason) is split into lines, so a phone's
  // narrow chart doesn't cut it off; Chart.js draws an array label as one line per item.
  function wrapped(label, width) {
    var lines = [];
    var line = "";
    label.split(/\s+/).forEach(function (word) {
      if (line && (line + " " + word).length > width) { lines.push(line); line = word; }
      else { line = line ? line + " " + word : word; }
    });
    if (line) lines.push(line);
    return lines.length > 1 ? lines : label;
  }

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var table = document.getElementById(canvas.getAttribute("data-table"));
    if (!table) return;
    var kind = canvas.getAttribute("data-chart");
    var data = readTable(table);
    if (kind === "hbar") {
      var width = canvas.parentNode.clientWidth < 500 ? 16 : 32;
      data.labels = data.labels.map(function (label) { return wrapped(label, width); });
    }
    new window.Chart(canvas, {
      type: kind === "line" ? "line" : "bar",
      data: data,
      options: {
        indexAxis: kind === "hbar" ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: data.datasets.length > 1 } },
        scales: { x: { beginAtZero: true }, y: { beginAtZero: true } },
      },
    });
    canvas.setAttribute("data-drawn", "true");
  });
})();
