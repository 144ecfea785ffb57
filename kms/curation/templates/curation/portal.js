"use strict";
// Bulk selection: "select all" ticks every fact checkbox in its form.
document.querySelectorAll("input[data-select-all]").forEach(function (box) {
  box.addEventListener("change", function () {
    box.form.querySelectorAll("input[name=fact_ids]").forEach(function (c) { c.checked = box.checked; });
  });
});
// Confirm destructive actions.
document.querySelectorAll("form[data-confirm]").forEach(function (f) {
  f.addEventListener("submit", function (e) { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
});
// Entity autocompletion for merge/edit inputs (datalist filled from the search endpoint).
document.querySelectorAll("input[data-entity-search]").forEach(function (input) {
  var list = document.getElementById(input.getAttribute("list"));
  var timer = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var url = input.dataset.entitySearch + "?q=" + encodeURIComponent(input.value) +
        (input.dataset.type ? "&type=" + encodeURIComponent(input.dataset.type) : "");
      fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (data) {
        list.innerHTML = "";
        data.results.forEach(function (e) {
          var o = document.createElement("option");
          o.value = e.uid; o.label = e.name + " (" + e.facts + " facts)";
          list.appendChild(o);
        });
      });
    }, 200);
  });
});
