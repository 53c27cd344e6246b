// Conveniences only: every form works without this file.
// - a checkbox with data-select-all checks or clears the form's row checkboxes;
// - a button with data-confirm asks before its form is sent.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.hasAttribute("data-select-all")) return;
    var form = box.form;
    if (!form) return;
    form.querySelectorAll('input[type="checkbox"][name="ids"]').forEach(function (row) {
      row.checked = box.checked;
    });
  });
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
  });
})();
