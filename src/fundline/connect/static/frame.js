/*
 * The widget's frame: receives tokens from connect.js, exchanges them for Connect sessions
 * kept in memory only, and shows the steps the server renders (/connect/v1/views). Every rule
 * lives on the server; this file moves HTML and events, nothing more.
 */
(function () {
  "use strict";

  var embedder = document.documentElement.getAttribute("data-embedder");
  var view = document.getElementById("view");
  var sessions = { onboarding: null, invoices: null };
  var lastState = null;
  var shown = null; // the view on screen, when it came from a GET
  var queue = Promise.resolve();

  function toHost(message) {
    if (embedder && window.parent !== window) window.parent.postMessage(message, embedder);
  }

  function forward(event) {
    if (event.eventType === "USER_STATE_CHANGED") {
      var key = JSON.stringify(event.data);
      if (key === lastState) return; // the state is reported when it changes
      lastState = key;
    }
    toHost({ fundline: "event", event: event });
  }

  function fail(errorType, message) {
    toHost({ fundline: "error", errorType: errorType, message: message });
  }

  function showMessage(title, text) {
    view.innerHTML = "";
    var h1 = document.createElement("h1");
    h1.textContent = title;
    var p = document.createElement("p");
    p.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.setAttribute("data-close", "");
    view.append(h1, p, close);
    h1.tabIndex = -1;
    h1.focus();
  }

  function focusTop() {
    var focus = view.querySelector("[data-focus]") || view.querySelector("h1");
    if (focus) {
      if (!focus.hasAttribute("tabindex")) focus.tabIndex = -1;
      focus.focus();
    }
  }

  function request(method, path, token, body) {
    var headers = { accept: "application/json" };
    if (token) headers.authorization = "Bearer " + token;
    if (body !== undefined) headers["content-type"] = "application/json";
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  }

  function offline(err) {
    fail("NETWORK_ERROR", "Cannot reach Fundline: " + err);
    showMessage("Cannot reach the server", "Check your connection, then close and try again.");
  }

  function exchange(token) {
    return request("POST", "/connect/v1/sessions", null, {
      token: token,
      embed_origin: embedder,
    })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) {
            var message = (body.error && body.error.message) || "The token was refused";
            var type = response.status === 403 ? "ORIGIN_NOT_ALLOWED" : "INVALID_TOKEN";
            fail(type, message);
            showMessage("This link has expired", message);
            return null;
          }
          return body;
        });
      })
      .catch(function (err) {
        offline(err);
        return null;
      });
  }

  // Render a view: the server answers {html, events}.
  function render(method, path, scope, body) {
    // A step of the other scope's session would be refused: use that scope's, else the other
    // (both reach the business's own steps).
    var used = sessions[scope] ? scope : sessions.onboarding ? "onboarding" : "invoices";
    var token = sessions[used];
    if (!token) return Promise.resolve();
    view.setAttribute("aria-busy", "true");
    return request(method, path, token, body)
      .then(function (response) {
        if (response.status === 401) {
          sessions[used] = null;
          fail("SESSION_EXPIRED", "The Connect session has ended");
          showMessage("Your session has ended", "Close this window and open it again.");
          return;
        }
        return response.json().then(function (out) {
          if (!response.ok || typeof out.html !== "string") {
            var message = (out.error && out.error.message) || "HTTP " + response.status;
            fail("ERROR", message);
            showMessage("Something went wrong", message);
            return;
          }
          view.innerHTML = out.html;
          shown = method === "GET" ? path : null;
          (out.events || []).forEach(forward);
          focusTop();
        });
      })
      .catch(offline)
      .finally(function () {
        view.removeAttribute("aria-busy");
      });
  }

  // One step at a time, in order; a step that fails does not stop the ones after it.
  function enqueue(step) {
    queue = queue.then(step).catch(function (err) {
      fail("ERROR", String(err));
    });
  }

  function fields(form) {
    var out = {};
    new FormData(form).forEach(function (value, name) {
      out[name] = String(value);
    });
    return out;
  }

  function handle(message) {
    if (message.fundline === "start" && typeof message.connectToken === "string") {
      return exchange(message.connectToken).then(function (opened) {
        if (!opened) return;
        sessions.onboarding = opened.access_token;
        return render("GET", "/connect/v1/views/current", "onboarding");
      });
    }
    if (message.fundline === "show") {
      if (typeof message.sessionToken === "string" && message.sessionToken) {
        return exchange(message.sessionToken).then(function (opened) {
          if (!opened) return;
          sessions.invoices = opened.access_token;
          return render("GET", "/connect/v1/views/invoices", "invoices");
        });
      }
      // The current step is on screen already when start() rendered it: re-rendering it
      // would wipe what the user may have begun typing.
      if (shown === "/connect/v1/views/current") return focusTop();
      return render("GET", "/connect/v1/views/current", "onboarding");
    }
  }

  window.addEventListener("message", function (event) {
    if (!embedder || event.source !== window.parent || event.origin !== embedder) return;
    var message = event.data || {};
    enqueue(function () {
      return handle(message);
    });
  });

  // Forms: posted as JSON to the view named by data-view, with the session of data-scope.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-view]")) return;
    event.preventDefault();
    var submit = form.querySelector("[type=submit]");
    if (submit) submit.disabled = true;
    enqueue(function () {
      return render("POST", form.getAttribute("data-view"), form.getAttribute("data-scope"), {
        fields: fields(form),
      });
    });
  });

  // The live quote: the confirmation form's summary, re-rendered by the server as it changes.
  var quoteTimer = null;
  var quoteAsked = 0; // only the answer to the latest question is shown
  function requote(form) {
    clearTimeout(quoteTimer);
    quoteTimer = setTimeout(function () {
      var target = view.querySelector("[data-quote-target]");
      var token = sessions.invoices;
      if (!target || !token) return;
      var asked = ++quoteAsked;
      request("POST", form.getAttribute("data-quote"), token, { fields: fields(form) })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (out) {
          if (asked === quoteAsked && out && typeof out.html === "string") {
            target.innerHTML = out.html;
          }
        })
        .catch(function () {}); // the quote is a preview: the confirmation checks again
    }, 200);
  }
  ["input", "change"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var form = event.target.form;
      if (form && form.hasAttribute("data-quote")) requote(form);
    });
  });

  function hide() {
    toHost({ fundline: "event", event: { eventType: "HIDE" } });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-close]");
    if (button) hide();
    var link = event.target.closest("[data-goto]");
    if (link) {
      event.preventDefault();
      enqueue(function () {
        return render("GET", link.getAttribute("data-goto"), link.getAttribute("data-scope"));
      });
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") hide();
  });

  if (embedder) {
    toHost({ fundline: "ready" });
  } else {
    // Not framed by a registered origin: the page tells the user, and says nothing else.
    showMessage(
      "This page cannot be opened here",
      "The financing widget opens only inside a partner's registered web page."
    );
  }
})();
