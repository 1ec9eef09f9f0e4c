/* Passkeys (WebAuthn): enrol one from the account page, sign in with one, confirm a session.
 *
 * Each form or button names its two endpoints (data-options-url, data-url): the first
 * gives the options (challenge…) as JSON, the browser asks the authenticator, the second
 * gets the answer. Messages come from the server in French; the few written here are
 * read from the page (data-msg-*), so that the page's language applies.
 * No inline script anywhere (CSP): this file is included with defer.
 */
(function () {
  "use strict";

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    if (!buffer) return null;
    var bytes = new Uint8Array(buffer);
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: toBytes(d.id) };
      if (d.transports) out.transports = d.transports;
      return out;
    });
  }

  function creationOptions(json) {
    var o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    var o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.allowCredentials = descriptors(json.allowCredentials);
    return o;
  }

  function serialise(credential) {
    var r = credential.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      response.userHandle = toB64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
    };
  }

  function csrf(root) {
    var field = root.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function post(url, token, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: body === undefined ? "{}" : JSON.stringify(body),
    }).then(function (response) {
      if (response.redirected) {
        // The session ended meanwhile (the server sent the login page): go there.
        window.location.assign(response.url);
        return new Promise(function () {});
      }
      return response.json().then(
        function (data) {
          if (!response.ok) throw new Error(data.error || response.statusText);
          return data;
        },
        function () {
          throw new Error(response.statusText);
        }
      );
    });
  }

  function say(root, text) {
    var status = root.querySelector("[data-passkey-status]");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("fr-alert", !!text);
    status.classList.toggle("fr-alert--error", !!text);
    status.classList.toggle("fr-alert--sm", !!text);
  }

  function cancelled(root, error) {
    // The holder closed the browser's dialog, or the authenticator refused: no stack trace.
    var text =
      error && error.name === "NotAllowedError"
        ? root.getAttribute("data-msg-cancelled") || error.message
        : error && error.name === "InvalidStateError"
          ? root.getAttribute("data-msg-known") || error.message
          : (error && error.message) || String(error);
    say(root, text);
  }

  function go(url) {
    var target = new URL(url, window.location.href);
    if (target.pathname + target.search === window.location.pathname + window.location.search) {
      // Only the fragment differs: assigning it would scroll, not show the new state.
      window.location.hash = target.hash;
      window.location.reload();
    } else {
      window.location.assign(target.href);
    }
  }

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials);
  }

  function withNext(url) {
    var next = new URLSearchParams(window.location.search).get("next");
    if (!next) return url;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "next=" + encodeURIComponent(next);
  }

  function register(form) {
    var token = csrf(form);
    var name = form.querySelector("input[name=name]");
    if (!name.value.trim()) {
      say(form, form.getAttribute("data-msg-name") || name.validationMessage);
      name.focus();
      return;
    }
    say(form, "");
    post(form.getAttribute("data-options-url"), token)
      .then(function (options) {
        return navigator.credentials.create({ publicKey: creationOptions(options) });
      })
      .then(function (credential) {
        return post(withNext(form.getAttribute("data-url")), token, {
          name: name.value,
          credential: serialise(credential),
        });
      })
      .then(function (data) {
        go(data.redirect);
      })
      .catch(function (error) {
        cancelled(form, error);
      });
  }

  function sign(root) {
    var token = csrf(root);
    say(root, "");
    post(withNext(root.getAttribute("data-options-url")), token)
      .then(function (options) {
        return navigator.credentials.get({ publicKey: requestOptions(options) });
      })
      .then(function (credential) {
        return post(withNext(root.getAttribute("data-url")), token, {
          credential: serialise(credential),
        });
      })
      .then(function (data) {
        go(data.redirect);
      })
      .catch(function (error) {
        cancelled(root, error);
      });
  }

  function ready() {
    var forms = document.querySelectorAll("[data-passkey-register], [data-passkey-sign]");
    forms.forEach(function (root) {
      if (!supported()) {
        var note = root.querySelector("[data-passkey-unsupported]");
        if (note) note.hidden = false;
        root.querySelectorAll("button").forEach(function (b) {
          b.disabled = true;
        });
        return;
      }
      root.addEventListener("submit", function (event) {
        event.preventDefault();
        if (root.hasAttribute("data-passkey-register")) register(root);
        else sign(root);
      });
    });
    document.documentElement.setAttribute("data-passkeys-ready", "1");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
