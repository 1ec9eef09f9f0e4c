// Webmail enhancements. Every feature works without this file; it adds upload
// progress, a last save of the draft when the page is left, and confirmations.
(function () {
  "use strict";

  // Forms whose action cannot be undone ask first.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm) {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    }
  });

  var compose = document.getElementById("compose-form");
  if (compose) {
    var dirty = false;
    var submitting = false;
    compose.addEventListener("input", function () { dirty = true; });
    compose.addEventListener("submit", function () { submitting = true; });
    document.body.addEventListener("htmx:afterRequest", function (event) {
      if (event.detail.elt === compose && event.detail.successful) {
        dirty = false;
      }
    });

    // The page may be closed before the delayed autosave runs: a beacon survives
    // the page. The form carries the CSRF token as a field, so the beacon passes
    // Django's CSRF check without custom headers (sendBeacon cannot set any).
    var saveOnLeave = function () {
      if (!dirty || submitting || !navigator.sendBeacon) {
        return;
      }
      if (navigator.sendBeacon(compose.dataset.saveUrl, new FormData(compose))) {
        dirty = false;
      }
    };
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") {
        saveOnLeave();
      }
    });
    window.addEventListener("pagehide", saveOnLeave);
  }

  var upload = document.getElementById("upload-form");
  if (upload) {
    var input = document.getElementById("upload-files");
    var wrap = document.getElementById("upload-progress-wrap");
    var bar = document.getElementById("upload-progress");
    var text = document.getElementById("upload-progress-text");
    var target = document.getElementById("draft-files");
    var button = document.getElementById("upload-button");

    var send = function () {
      if (!input.files || input.files.length === 0) {
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", upload.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          var percent = Math.round((event.loaded / event.total) * 100);
          bar.value = percent;
          bar.textContent = percent + " %";
          text.textContent = percent + " %";
        }
      });
      xhr.addEventListener("load", function () {
        wrap.hidden = true;
        button.disabled = false;
        // A redirect (expired session) lands elsewhere: let the page show it whole.
        var landed = new URL(xhr.responseURL, window.location.href).pathname;
        if ((xhr.status !== 200 && xhr.status !== 400) || landed !== new URL(upload.action).pathname) {
          window.location.reload();
          return;
        }
        target.innerHTML = xhr.responseText;
        if (window.htmx) {
          window.htmx.process(target);
        }
        input.value = "";
      });
      xhr.addEventListener("error", function () {
        wrap.hidden = true;
        button.disabled = false;
        text.textContent = "";
        target.insertAdjacentHTML(
          "afterbegin",
          '<div class="fr-alert fr-alert--error fr-alert--sm fr-mb-1w" role="alert"><p></p></div>'
        );
        target.querySelector(".fr-alert p").textContent = upload.dataset.errorText || "Erreur";
      });
      bar.value = 0;
      text.textContent = "0 %";
      wrap.hidden = false;
      button.disabled = true;
      xhr.send(new FormData(upload));
    };

    upload.addEventListener("submit", function (event) {
      event.preventDefault();
      send();
    });
    input.addEventListener("change", send);
  }
})();
