// The compose page. Every feature works without this file (plain text, a button to save);
// it adds: autosave stopped once the message is sent, a last save when the page is left,
// the draft's addresses once the first save with content made it, upload progress, and
// a minimal rich-text editor (bold, italic, lists, links) whose HTML the server sanitises.
(function () {
  "use strict";

  var compose = document.getElementById("compose-form");
  if (!compose) {
    return;
  }
  var dirty = false;
  var sending = false;

  compose.addEventListener("input", function () { dirty = true; });
  compose.addEventListener("submit", function () {
    // Send (or "Enregistrer le brouillon"): no autosave after this, not even a late one.
    sending = true;
  });
  // One request of the page at a time while its draft may still be in the making: an
  // upload waits for the autosave in flight (and the reverse), so both find one draft.
  var saving = false;
  var uploading = false;
  var uploadWaiting = null;
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt !== compose) {
      return;
    }
    if (sending || uploading) {
      event.preventDefault();
      if (uploading && !sending) {
        pendingSave = true;
      }
      return;
    }
    saving = true;
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt !== compose) {
      return;
    }
    saving = false;
    if (event.detail.successful) {
      dirty = false;
    }
    if (uploadWaiting) {
      var next = uploadWaiting;
      uploadWaiting = null;
      next();
    }
  });

  // The first save with content made the draft: the page becomes the draft's page.
  var pendingSave = false;
  var afterUpload = function () {
    uploading = false;
    if (pendingSave && window.htmx && !sending) {
      pendingSave = false;
      window.htmx.trigger(compose, "change");
    }
  };
  var created = function (urls) {
    if (!urls || !urls.page) {
      return;
    }
    var remove = document.getElementById("draft-delete-form");
    if (remove && urls["delete"]) {
      remove.action = urls["delete"];
      remove.hidden = false;
    }
    var link = document.getElementById("xdm-link");
    var button = document.getElementById("xdm-button");
    if (link && button && urls.xdm) {
      link.href = urls.xdm;
      link.hidden = false;
      button.hidden = true;
    }
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", urls.page);
    }
  };
  document.body.addEventListener("draftCreated", function (event) {
    created(event.detail);
  });

  // The page may be closed before the delayed autosave runs: a beacon survives the
  // page. The form carries the CSRF token as a field, so the beacon passes Django's
  // CSRF check without custom headers (sendBeacon cannot set any).
  var saveOnLeave = function () {
    if (!dirty || sending || !navigator.sendBeacon) {
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

  // ------------------------------------------------------------------ rich text
  var editor = document.getElementById("rich-editor");
  var body = document.getElementById("rich-body");
  var hidden = document.getElementById("id_html");
  var text = document.getElementById("id_text");
  var choice = document.getElementById("format-choice");
  if (editor && body && hidden && text && choice) {
    choice.hidden = false;
    var sync = function () {
      hidden.value = body.innerHTML;
      // Announced to the form like a typed field: the autosave follows.
      hidden.dispatchEvent(new Event("change", { bubbles: true }));
    };
    var escapeHtml = function (value) {
      var div = document.createElement("div");
      div.textContent = value;
      return div.innerHTML;
    };
    var showRich = function (rich) {
      editor.hidden = !rich;
      text.hidden = rich;
      if (rich) {
        if (!body.innerHTML.trim() && text.value.trim()) {
          body.innerHTML = text.value.split(/\n/).map(function (line) {
            return "<p>" + (escapeHtml(line) || "<br>") + "</p>";
          }).join("");
        }
        sync();
      } else {
        if (body.innerText.trim()) {
          text.value = body.innerText;
        }
        hidden.value = "";
      }
    };
    showRich(document.getElementById("format-html").checked);
    choice.addEventListener("change", function (event) {
      if (event.target && event.target.name === "format") {
        showRich(event.target.value === "html");
        dirty = true;
      }
    });
    var timer = null;
    body.addEventListener("input", function () {
      dirty = true;
      window.clearTimeout(timer);
      timer = window.setTimeout(sync, 300);
    });
    var pressed = function () {
      editor.querySelectorAll("[aria-pressed]").forEach(function (button) {
        var state = false;
        try {
          state = document.queryCommandState(button.dataset.command);
        } catch (e) {
          state = false;
        }
        button.setAttribute("aria-pressed", state ? "true" : "false");
      });
    };
    document.addEventListener("selectionchange", function () {
      if (document.activeElement === body) {
        pressed();
      }
    });
    editor.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-command]");
      if (!button) {
        return;
      }
      body.focus();
      var command = button.dataset.command;
      var value = null;
      if (command === "createLink") {
        value = window.prompt(button.dataset.prompt || "URL", "https://");
        if (!value || !/^(https?:|mailto:)/i.test(value.trim())) {
          return;
        }
        value = value.trim();
      }
      document.execCommand(command, false, value);
      pressed();
      sync();
      dirty = true;
    });
    compose.addEventListener("submit", function () {
      if (!editor.hidden) {
        hidden.value = body.innerHTML;
      }
    });
  }

  // ------------------------------------------------------------------ upload
  var upload = document.getElementById("upload-form");
  if (upload) {
    var input = document.getElementById("upload-files");
    var wrap = document.getElementById("upload-progress-wrap");
    var bar = document.getElementById("upload-progress");
    var label = document.getElementById("upload-progress-text");
    var target = document.getElementById("draft-files");
    var button = document.getElementById("upload-button");

    var send = function () {
      if (!input.files || input.files.length === 0) {
        return;
      }
      if (saving) {
        uploadWaiting = send;
        return;
      }
      uploading = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", upload.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          var percent = Math.round((event.loaded / event.total) * 100);
          bar.value = percent;
          bar.textContent = percent + " %";
          label.textContent = percent + " %";
        }
      });
      xhr.addEventListener("loadend", afterUpload);
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
        var trigger = xhr.getResponseHeader("HX-Trigger");
        if (trigger) {
          try {
            // The files made the draft: what was typed goes into it at once.
            pendingSave = pendingSave || dirty;
            created(JSON.parse(trigger).draftCreated);
          } catch (e) {
            // Not ours: ignored.
          }
        }
      });
      xhr.addEventListener("error", function () {
        wrap.hidden = true;
        button.disabled = false;
        label.textContent = "";
        target.insertAdjacentHTML(
          "afterbegin",
          '<div class="fr-alert fr-alert--error fr-alert--sm fr-mb-1w" role="alert"><p></p></div>'
        );
        target.querySelector(".fr-alert p").textContent = upload.dataset.errorText || "Erreur";
      });
      bar.value = 0;
      label.textContent = "0 %";
      wrap.hidden = false;
      button.disabled = true;
      var data = new FormData(upload);
      if (!document.getElementById("draft-delete-form") || document.getElementById("draft-delete-form").hidden) {
        // No draft yet: the files make it, with what was typed so far.
        new FormData(compose).forEach(function (value, name) {
          if (name !== "csrfmiddlewaretoken" && name !== "compose_key" && name !== "source" && name !== "mode") {
            data.append(name, value);
          }
        });
      }
      xhr.send(data);
    };

    upload.addEventListener("submit", function (event) {
      event.preventDefault();
      send();
    });
    input.addEventListener("change", send);
  }
})();
