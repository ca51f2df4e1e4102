// The results tables: filter by text and by output field, and page through the rows.
// The rows are JSON inside each job's section ([id, [inputs...], result]); only one page
// of them is in the DOM at a time. Everything else on the page is static HTML.
(function () {
  "use strict";
  var numbers = new Intl.NumberFormat("en-US");

  // The same text as the server's cell_text (runner/reportpage/table.py) for page one.
  function cellText(value) {
    if (value === null || value === undefined) return "\u2014";
    if (typeof value === "string") return value;
    if (Array.isArray(value)) return value.map(cellText).join(", ");
    return JSON.stringify(value);
  }

  function sameValue(a, b) {
    if (b !== null && typeof b === "object") return JSON.stringify(a) === JSON.stringify(b);
    return a === b;
  }

  function ResultsTable(section) {
    var meta = JSON.parse(section.querySelector("script.meta").textContent);
    var rows = JSON.parse(section.querySelector("script.rows").textContent);
    var form = section.querySelector("form.controls");
    var tbody = section.querySelector("table.results tbody");
    var pager = section.querySelector("nav.pager");
    var where = pager.querySelector(".where");
    var status = section.querySelector(".status");
    var columns = 1 + Math.max(meta.inputs.length, 1) + meta.outputs.length;
    var haystack = null;          // lower-cased text of each row, built on the first search
    var matching = null;          // indices of the rows that pass the filters (null: all)
    var page = 0;
    var size = meta.page;

    function outputs(row) {
      if (!meta.fielded) return [row[2]];
      return meta.outputs.map(function (name) {
        return row[2] !== null && typeof row[2] === "object" ? row[2][name] : null;
      });
    }

    function rowText(row) {
      return [String(row[0])].concat(row[1].map(cellText), outputs(row).map(cellText))
        .join("\n").toLowerCase();
    }

    function fieldValue(row, name) {
      var result = row[2];
      return result !== null && typeof result === "object" && !Array.isArray(result)
        ? result[name] : undefined;
    }

    function readFilters() {
      var tests = [];
      var text = form.querySelector("[data-filter=text]").value.trim().toLowerCase();
      var terms = text ? text.split(/\s+/) : [];
      if (terms.length) {
        if (haystack === null) haystack = rows.map(rowText);
        tests.push(function (row, i) {
          for (var t = 0; t < terms.length; t++) {
            if (haystack[i].indexOf(terms[t]) < 0) return false;
          }
          return true;
        });
      }
      form.querySelectorAll("[data-field]").forEach(function (control) {
        if (control.value === "") return;
        var name = control.getAttribute("data-field");
        var kind = control.getAttribute("data-filter");
        if (kind === "equals") {
          var wanted = JSON.parse(control.value);
          tests.push(function (row) { return sameValue(fieldValue(row, name), wanted); });
        } else if (kind === "items") {
          var item = JSON.parse(control.value);
          tests.push(function (row) {
            var value = fieldValue(row, name);
            return Array.isArray(value) && value.some(function (v) { return sameValue(v, item); });
          });
        } else if (kind === "min" || kind === "max") {
          var bound = Number(control.value);
          if (isNaN(bound)) return;
          tests.push(function (row) {
            var value = fieldValue(row, name);
            return typeof value === "number" && (kind === "min" ? value >= bound : value <= bound);
          });
        }
      });
      return tests;
    }

    function filter() {
      var tests = readFilters();
      size = Number(form.querySelector("[data-filter=size]").value) || meta.page;
      if (!tests.length) {
        matching = null;
      } else {
        matching = [];
        for (var i = 0; i < rows.length; i++) {
          var pass = true;
          for (var t = 0; t < tests.length && pass; t++) pass = tests[t](rows[i], i);
          if (pass) matching.push(i);
        }
      }
      page = 0;
      show();
    }

    function count() { return matching === null ? rows.length : matching.length; }
    function pages() { return Math.max(1, Math.ceil(count() / size)); }

    function cell(tag, text, className) {
      var element = document.createElement(tag);
      element.textContent = text;
      if (className) element.className = className;
      return element;
    }

    function show() {
      var total = count();
      var start = page * size;
      var end = Math.min(start + size, total);
      var fragment = document.createDocumentFragment();
      for (var n = start; n < end; n++) {
        var row = rows[matching === null ? n : matching[n]];
        var tr = document.createElement("tr");
        var head = cell("th", cellText(row[0]));
        head.scope = "row";
        tr.appendChild(head);
        if (!row[1].length) tr.appendChild(cell("td", ""));
        row[1].forEach(function (value) { tr.appendChild(cell("td", cellText(value))); });
        outputs(row).forEach(function (value) { tr.appendChild(cell("td", cellText(value), "out")); });
        fragment.appendChild(tr);
      }
      if (!total) {
        var empty = cell("td", "No row matches the filters.");
        empty.colSpan = columns;
        var tr0 = document.createElement("tr");
        tr0.appendChild(empty);
        fragment.appendChild(tr0);
      }
      tbody.textContent = "";
      tbody.appendChild(fragment);
      section.setAttribute("data-matching", String(total));
      section.setAttribute("data-page", String(page + 1));
      where.textContent = "Page " + numbers.format(page + 1) + " of " + numbers.format(pages());
      var of = matching === null ? "" : " matching the filters, of " + numbers.format(rows.length);
      status.textContent = total
        ? "Rows " + numbers.format(start + 1) + "\u2013" + numbers.format(end) + " of " +
          numbers.format(total) + of + "."
        : "No row matches the filters (of " + numbers.format(rows.length) + ").";
      var last = page >= pages() - 1;
      pager.querySelector("[data-page=first]").disabled = page === 0;
      pager.querySelector("[data-page=prev]").disabled = page === 0;
      pager.querySelector("[data-page=next]").disabled = last;
      pager.querySelector("[data-page=last]").disabled = last;
      var focused = document.activeElement;
      if (focused && focused.disabled && pager.contains(focused)) {
        pager.querySelector(page === 0 ? "[data-page=next]" : "[data-page=prev]").focus();
      }
    }

    function go(where) {
      var target = {first: 0, prev: page - 1, next: page + 1, last: pages() - 1}[where];
      target = Math.min(Math.max(target, 0), pages() - 1);
      if (target !== page) {
        page = target;
        show();
      }
    }

    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.addEventListener("input", filter);   // selects fire it too, before "change"
    pager.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-page]");
      if (button) go(button.getAttribute("data-page"));
    });
    pager.addEventListener("keydown", function (event) {
      var action = {ArrowLeft: "prev", ArrowRight: "next", Home: "first", End: "last"}[event.key];
      if (action) {
        event.preventDefault();
        go(action);
      }
    });
    form.hidden = false;
    pager.hidden = false;
    // Not <noscript>: this note must also show when the script is blocked or fails.
    section.querySelector(".without-script").hidden = true;
    show();
  }

  document.querySelectorAll("section.job").forEach(function (section) {
    ResultsTable(section);
  });
  document.documentElement.setAttribute("data-ready", "true");
  if (window.performance && performance.mark) performance.mark("report-ready");
})();
