/*
 * Fundline Connect: the drop-in for Kanmon's kanmon-connect.js.
 *
 *   <script src="https://fundline.example/connect/v1/connect.js"></script>
 *   KANMON_CONNECT.start({ connectToken, onEvent, onError });
 *   KANMON_CONNECT.show({ sessionToken, component: "SESSION_INVOICE_FLOW_WITH_INVOICE_FILE" });
 *   KANMON_CONNECT.stop();
 *
 * The widget is an iframe on Fundline's origin. Tokens reach it by postMessage, never in a
 * URL; messages go to Fundline's origin only, and only Fundline's frame is listened to.
 * Nothing here throws into the host page: mistakes are reported to onError and the console.
 */
(function () {
  "use strict";

  if (window.KANMON_CONNECT && window.KANMON_CONNECT.fundline) {
    return; // loaded twice: keep the first, which may be running
  }

  var script = document.currentScript;
  var scriptUrl = new URL(script ? script.src : "/connect/v1/connect.js", location.href);
  // The base is wherever this file is served from, behind any path prefix.
  var base = scriptUrl.href.replace(/\/connect\/v1\/connect\.js(\?.*)?$/, "");
  var fundlineOrigin = scriptUrl.origin;

  var state = null; // { options, overlay, frame, ready, readyTimer, pending[], opener }
  var READY_TIMEOUT_MS = 15000;

  function report(options, errorType, message) {
    if (window.console) console.error("[Fundline Connect] " + message);
    if (options && typeof options.onError === "function") {
      try {
        options.onError({ errorType: errorType, message: message });
      } catch (err) {
        if (window.console) console.error(err);
      }
    }
  }

  function emit(event) {
    if (!state || typeof state.options.onEvent !== "function") return;
    try {
      state.options.onEvent(event);
    } catch (err) {
      if (window.console) console.error(err); // the host's handler failed, not the widget
    }
  }

  function post(message) {
    if (!state) return;
    if (!state.ready) {
      state.pending.push(message);
      return;
    }
    state.frame.contentWindow.postMessage(message, fundlineOrigin);
  }

  function setVisible(visible) {
    if (!state) return;
    // Through the CSSOM, which a host page's CSP allows (a <style> element it may not).
    state.overlay.style.display = visible ? "flex" : "none";
    if (visible) {
      state.opener = document.activeElement;
      state.frame.focus();
    } else if (state.opener && typeof state.opener.focus === "function") {
      state.opener.focus();
      state.opener = null;
    }
  }

  function onMessage(event) {
    if (!state || event.origin !== fundlineOrigin) return;
    if (!state.frame || event.source !== state.frame.contentWindow) return;
    var message = event.data || {};
    switch (message.fundline) {
      case "ready":
        clearTimeout(state.readyTimer);
        state.ready = true;
        var pending = state.pending;
        state.pending = [];
        pending.forEach(post);
        break;
      case "event":
        if (message.event && message.event.eventType === "HIDE") setVisible(false);
        emit(message.event);
        break;
      case "error":
        report(state.options, message.errorType || "ERROR", message.message || "Unknown error");
        break;
    }
  }

  function buildOverlay() {
    var overlay = document.createElement("div");
    overlay.setAttribute("data-fundline-connect", "");
    overlay.style.cssText =
      "position:fixed;inset:0;z-index:2147483647;background:rgba(17,24,39,.55);" +
      "display:none;align-items:center;justify-content:center;";
    var frame = document.createElement("iframe");
    frame.title = "Financing";
    frame.src = base + "/connect/v1/frame?origin=" + encodeURIComponent(location.origin);
    // Full screen on a phone; a centred panel on anything wider.
    var small = window.matchMedia && window.matchMedia("(max-width: 600px)").matches;
    frame.style.cssText =
      "border:0;background:#fff;width:100%;height:100%;" +
      (small ? "" : "max-width:560px;max-height:820px;border-radius:12px;") +
      "box-shadow:0 20px 50px rgba(0,0,0,.3);";
    overlay.appendChild(frame);
    return { overlay: overlay, frame: frame };
  }

  function checkOrigin(options, token) {
    return fetch(base + "/connect/v1/embeds", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: token }),
      credentials: "omit",
    }).then(function (response) {
      if (response.ok) return true;
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (body) {
          var message = (body.error && body.error.message) || "HTTP " + response.status;
          var type = response.status === 401 ? "INVALID_TOKEN" : "ORIGIN_NOT_ALLOWED";
          report(options, type, message);
          return false;
        });
    });
  }

  var api = {
    fundline: true,

    start: function (options) {
      try {
        options = options || {};
        if (state) return; // once per page: a second start is harmless
        if (typeof options.connectToken !== "string" || !options.connectToken) {
          report(options, "INVALID_PARAMETERS", "start() needs a connectToken string");
          return;
        }
        state = { options: options, ready: false, pending: [], opener: null, frame: null };
        var current = state;
        checkOrigin(options, options.connectToken)
          .then(function (allowed) {
            if (!allowed || state !== current) {
              if (state === current) state = null;
              return;
            }
            var built = buildOverlay();
            current.overlay = built.overlay;
            current.frame = built.frame;
            current.pending.unshift({ fundline: "start", connectToken: options.connectToken });
            window.addEventListener("message", onMessage);
            document.body.appendChild(built.overlay);
            // A frame that never says it is ready was blocked (this page is itself framed by
            // an origin that may not embed the widget) or could not load.
            current.readyTimer = setTimeout(function () {
              if (state === current && !current.ready) {
                report(options, "FRAME_NOT_LOADED", "The financing widget did not load");
              }
            }, READY_TIMEOUT_MS);
          })
          .catch(function (err) {
            if (state === current) state = null;
            report(options, "NETWORK_ERROR", "Cannot reach Fundline at " + base + ": " + err);
          });
      } catch (err) {
        report(options, "ERROR", String(err));
      }
    },

    show: function (args) {
      try {
        args = args || {};
        if (!state) {
          report(null, "NOT_STARTED", "show() was called before start()");
          if (args && typeof args.onError === "function") {
            args.onError({ errorType: "NOT_STARTED", message: "show() was called before start()" });
          }
          return;
        }
        if (args.sessionToken !== undefined && typeof args.sessionToken !== "string") {
          report(state.options, "INVALID_PARAMETERS", "sessionToken must be a string");
          return;
        }
        var go = function () {
          post({ fundline: "show", sessionToken: args.sessionToken, component: args.component });
          setVisible(true);
        };
        if (state.overlay) {
          go();
        } else {
          // start() is still checking the origin: show once the frame exists.
          var current = state;
          var wait = setInterval(function () {
            if (state !== current) return clearInterval(wait);
            if (current.overlay) {
              clearInterval(wait);
              go();
            }
          }, 25);
        }
      } catch (err) {
        report(state && state.options, "ERROR", String(err));
      }
    },

    stop: function () {
      try {
        if (!state) return;
        window.removeEventListener("message", onMessage);
        clearTimeout(state.readyTimer);
        if (state.overlay && state.overlay.parentNode) {
          state.overlay.parentNode.removeChild(state.overlay);
        }
        state = null;
      } catch (err) {
        if (window.console) console.error(err);
      }
    },
  };

  window.KANMON_CONNECT = api;
  window.FundlineConnect = api;
})();
