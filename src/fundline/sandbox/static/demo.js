/*
 * The demo platform's page: what a partner's front end does with Fundline Connect, the way
 * Monite's React SDK does it with Kanmon Connect. Its backend (/demo/api) calls /v1.
 */
(function () {
  "use strict";

  var received = [];
  window.fundlineDemoEvents = received; // for the browser tests, and for the curious
  var log = document.getElementById("events");
  var stateLine = document.getElementById("financing-state");
  var openButton = document.getElementById("open-financing");
  var servicing = false;

  function api(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().then(function (out) {
        if (!response.ok) throw new Error(out.message || "HTTP " + response.status);
        return out;
      });
    });
  }

  function note(text, kind) {
    var item = document.createElement("li");
    item.textContent = text;
    if (kind) item.className = kind;
    log.appendChild(item);
  }

  function setButtons() {
    document.querySelectorAll("button.get-paid").forEach(function (button) {
      button.disabled = !servicing;
    });
  }

  function refreshTable() {
    return fetch("/demo/table")
      .then(function (response) {
        return response.text();
      })
      .then(function (html) {
        document.getElementById("invoices").innerHTML = html;
        setButtons();
      });
  }

  function onEvent(event) {
    received.push(event);
    var data = event.data || {};
    if (event.eventType === "USER_STATE_CHANGED") {
      note("USER_STATE_CHANGED: " + data.userState + (data.section ? " (" + data.section + ")" : ""));
      stateLine.textContent = data.actionMessage || data.userState;
      servicing = data.userState === "SERVICING";
      setButtons();
    } else if (event.eventType === "USER_CONFIRMED_INVOICE") {
      var invoice = data.invoice || {};
      note("USER_CONFIRMED_INVOICE: " + invoice.platformInvoiceNumber + " " + invoice.state);
      refreshTable();
    } else {
      note(event.eventType);
      if (event.eventType === "HIDE") refreshTable();
    }
  }

  function onError(error) {
    received.push({ eventType: "ERROR", data: error });
    note("Error: " + error.message, "error");
    stateLine.textContent = error.message;
  }

  openButton.addEventListener("click", function () {
    window.KANMON_CONNECT.show();
  });

  document.getElementById("invoices").addEventListener("click", function (event) {
    var button = event.target.closest("button.get-paid");
    if (!button) return;
    button.disabled = true;
    api("/demo/api/financing_invoices", { invoice_id: button.getAttribute("data-invoice-id") })
      .then(function (out) {
        window.KANMON_CONNECT.show({
          sessionToken: out.session_token,
          component: "SESSION_INVOICE_FLOW_WITH_INVOICE_FILE",
        });
      })
      .catch(function (err) {
        note("Error: " + err.message, "error");
        button.disabled = false;
      });
  });

  api("/demo/api/financing_token")
    .then(function (out) {
      window.KANMON_CONNECT.start({
        connectToken: out.connect_token,
        onEvent: onEvent,
        onError: onError,
      });
      openButton.disabled = false;
    })
    .catch(function (err) {
      onError({ errorType: "DEMO", message: err.message });
    });
})();
