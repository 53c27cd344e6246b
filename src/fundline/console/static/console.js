// Conveniences only: every form works without this file.
// - a checkbox with data-select-all checks or clears the form's row checkboxes;
// - a button with data-confirm asks before its form is sent;
// - outside a secure context (plain http:// to another host) the [data-insecure] notes show.
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

// The sign-in page (added with the browser tests): the session cookie is Secure, so a browser on plain
// http:// (but for 127.0.0.1 and localhost) drops it and every sign-in silently lands back
// on the sign-in page. Say so instead.
(function () {
  "use strict";
  if (window.isSecureContext) return;
  document.querySelectorAll("[data-insecure]").forEach(function (note) {
    note.hidden = false;
  });
})();
