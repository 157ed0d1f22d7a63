// photo-pipeline web app: the little JavaScript it has (plain, no build step, no network).
// 1. Forms with data-confirm ask before they are sent (merge, forget).
// 2. On the Photo page, pointing at a face's row highlights its box on the picture.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".face-row[data-box]").forEach(function (row) {
    var box = document.getElementById(row.getAttribute("data-box"));
    if (!box) return;
    row.addEventListener("mouseenter", function () { box.classList.add("active"); });
    row.addEventListener("mouseleave", function () { box.classList.remove("active"); });
  });
});
