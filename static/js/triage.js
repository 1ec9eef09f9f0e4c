// Triage of the message list: "tout sélectionner", the selection's count, keyboard
// shortcuts (help: "?"), drag and drop onto the side menu's folders, new mail without
// reload. Everything posts the list's own form (#triage-form), which works without this
// file.
//
// Shortcuts are never active while typing in a field. They are off altogether when
// <html data-shortcuts="off"> (or <body data-shortcuts="off">) is set by the page (a
// user preference), or when localStorage "mssante.shortcuts" is "off" (the switch in
// the help dialog).
(function () {
  "use strict";

  var STORAGE_KEY = "mssante.shortcuts";
  var POLL_MS = 45000;

  var form = document.getElementById("triage-form");
  var table = document.querySelector("table.webmail-list");
  var rows = table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr.webmail-row")) : [];
  var count = document.getElementById("triage-count");
  var current = -1;

  function boxes() {
    return rows.map(function (row) { return row.querySelector('input[name="entries"]'); })
      .filter(function (box) { return box; });
  }

  function selected() {
    return boxes().filter(function (box) { return box.checked; });
  }

  function showCount() {
    if (!count) { return; }
    var n = selected().length;
    // The words come from the page (translated there); only the number is ours.
    count.textContent = n === 0 ? "" : (n === 1 ? count.dataset.one : count.dataset.many.replace("%(count)s", n));
    var all = document.getElementById("triage-all");
    if (all) {
      var total = boxes().length;
      all.checked = total > 0 && n === total;
      all.indeterminate = n > 0 && n < total;
    }
    rows.forEach(function (row) {
      var box = row.querySelector('input[name="entries"]');
      row.classList.toggle("triage-row--selected", !!(box && box.checked));
    });
  }

  // ------------------------------------------------------------------ selection

  if (form && rows.length) {
    var allWrap = document.querySelector(".triage-all");
    var all = document.getElementById("triage-all");
    if (allWrap && all) {
      allWrap.hidden = false;
      all.addEventListener("change", function () {
        boxes().forEach(function (box) { box.checked = all.checked; });
        showCount();
      });
    }
    var allLink = document.getElementById("triage-select-all-link");
    if (allLink) {
      // Without script the link reloads the page with every row ticked; here it ticks
      // them in place (or unticks them all when all are ticked). On a phone, where the
      // table's header is hidden, it is the only "tout sélectionner".
      allLink.addEventListener("click", function (event) {
        event.preventDefault();
        var every = selected().length === boxes().length;
        boxes().forEach(function (box) { box.checked = !every; });
        showCount();
      });
    }
    var last = null;
    boxes().forEach(function (box, index) {
      box.addEventListener("click", function (event) {
        // Shift+click selects the rows between the last one clicked and this one.
        if (event.shiftKey && last !== null) {
          var from = Math.min(last, index);
          var to = Math.max(last, index);
          boxes().slice(from, to + 1).forEach(function (b) { b.checked = box.checked; });
        }
        last = index;
        showCount();
      });
    });
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (submitter && submitter.value === "supprimer" && form.dataset.confirmDelete) {
        if (!window.confirm(form.dataset.confirmDelete)) {
          event.preventDefault();
          return;
        }
        var confirmed = document.createElement("input");
        confirmed.type = "hidden";
        confirmed.name = "confirm";
        confirmed.value = "1";
        form.appendChild(confirmed);
      }
    });
    showCount();
  }

  // Act on the selection, or on the current row when nothing is selected.
  function actOn(action) {
    if (!form) { return; }
    if (selected().length === 0 && current >= 0) {
      var box = rows[current].querySelector('input[name="entries"]');
      if (box) { box.checked = true; }
    }
    if (selected().length === 0) { return; }
    var button = form.querySelector('button[name="action"][value="' + action + '"]');
    if (button) {
      form.requestSubmit(button);
    }
  }

  // ------------------------------------------------------------------ drag and drop

  function postMove(folderId, ids) {
    var target = document.createElement("form");
    target.method = "post";
    // Not form.action: the form has buttons named "action", which that property returns.
    target.action = form.getAttribute("action");
    target.hidden = true;
    var fields = [["csrfmiddlewaretoken", form.querySelector('input[name="csrfmiddlewaretoken"]').value],
      ["next", form.querySelector('input[name="next"]').value],
      ["action", "deplacer:" + folderId]];
    ids.forEach(function (id) { fields.push(["entries", id]); });
    fields.forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      target.appendChild(input);
    });
    document.body.appendChild(target);
    target.submit();
  }

  if (form && rows.length) {
    rows.forEach(function (row) {
      row.draggable = true;
      row.addEventListener("dragstart", function (event) {
        var box = row.querySelector('input[name="entries"]');
        var ids = box && box.checked
          ? selected().map(function (b) { return b.value; })
          : [row.dataset.entry];
        event.dataTransfer.setData("application/x-mssante-entries", ids.join(","));
        event.dataTransfer.effectAllowed = "move";
        row.classList.add("triage-row--dragging");
      });
      row.addEventListener("dragend", function () { row.classList.remove("triage-row--dragging"); });
    });
    var here = form.querySelectorAll('button[name="action"][value^="deplacer:"]');
    var allowed = {};
    Array.prototype.forEach.call(here, function (b) { allowed[b.value.split(":")[1]] = true; });
    document.querySelectorAll("a.webmail-folder-link[data-folder-id]").forEach(function (link) {
      var id = link.dataset.folderId;
      if (!allowed[id]) { return; }
      link.addEventListener("dragover", function (event) {
        if (event.dataTransfer.types.indexOf("application/x-mssante-entries") === -1) { return; }
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        link.classList.add("triage-drop");
      });
      link.addEventListener("dragleave", function () { link.classList.remove("triage-drop"); });
      link.addEventListener("drop", function (event) {
        var data = event.dataTransfer.getData("application/x-mssante-entries");
        link.classList.remove("triage-drop");
        if (!data) { return; }
        event.preventDefault();
        postMove(id, data.split(","));
      });
    });
  }

  // ------------------------------------------------------------------ keyboard

  function shortcutsOff() {
    if (document.documentElement.dataset.shortcuts === "off" || document.body.dataset.shortcuts === "off") {
      return true;
    }
    try { return window.localStorage.getItem(STORAGE_KEY) === "off"; } catch (e) { return false; }
  }

  function typing(target) {
    if (!target || !(target instanceof Element)) { return false; }
    if (target.isContentEditable) { return true; }
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") { return true; }
    if (tag === "INPUT") {
      var type = (target.getAttribute("type") || "text").toLowerCase();
      return ["checkbox", "radio", "button", "submit", "reset"].indexOf(type) === -1;
    }
    return false;
  }

  function setCurrent(index) {
    if (!rows.length) { return; }
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) { rows[current].classList.remove("triage-row--current"); }
    current = index;
    var row = rows[current];
    row.classList.add("triage-row--current");
    var link = row.querySelector(".webmail-list__subject a");
    if (link) { link.focus(); }
  }

  // The row holding the focus (Tab reaches the subjects' links) becomes the current one.
  rows.forEach(function (row, index) {
    row.addEventListener("focusin", function () {
      if (current !== index) {
        if (current >= 0 && rows[current]) { rows[current].classList.remove("triage-row--current"); }
        current = index;
        row.classList.add("triage-row--current");
      }
    });
  });

  function clickFirst(selector) {
    var el = document.querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }

  // On a message: its move menu, set to the archive, sent.
  function archiveShown() {
    var option = document.querySelector('form.webmail-move option[data-role="archive"]');
    if (!option) { return false; }
    option.selected = true;
    option.closest("form").requestSubmit();
    return true;
  }

  function openHelp() {
    var dialog = document.getElementById("triage-help");
    if (dialog && window.dsfr) {
      window.dsfr(dialog).modal.disclose();
    }
  }

  var helpButton = document.querySelector(".triage-help-btn");
  if (helpButton) { helpButton.hidden = false; }
  var toggle = document.getElementById("triage-shortcuts-toggle");
  if (toggle) {
    toggle.checked = !shortcutsOff();
    toggle.addEventListener("change", function () {
      try {
        if (toggle.checked) { window.localStorage.removeItem(STORAGE_KEY); }
        else { window.localStorage.setItem(STORAGE_KEY, "off"); }
      } catch (e) { /* storage refused: the page's attribute still decides */ }
    });
  }

  var pendingG = false;
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) { return; }
    var key = event.key;
    if (key === "?") {
      if (document.getElementById("triage-help")) { event.preventDefault(); openHelp(); }
      return;
    }
    if (shortcutsOff()) { return; }
    // Inside an open dialog, only the dialog's own keys.
    if (event.target instanceof Element && event.target.closest("dialog[open], .fr-modal--opened")) { return; }
    if (pendingG) {
      pendingG = false;
      if (key === "i") { event.preventDefault(); clickFirst('a.webmail-folder-link[data-role="inbox"]'); }
      return;
    }
    var handled = true;
    switch (key) {
      case "j": setCurrent(current + 1); break;
      case "k": setCurrent(current < 0 ? 0 : current - 1); break;
      case "o":
        if (current >= 0) { clickFirst("tr.triage-row--current .webmail-list__subject a"); } else { handled = false; }
        break;
      case "Enter":
        // On a focused link or button the browser does it already.
        if (current >= 0 && !(event.target instanceof HTMLAnchorElement || event.target instanceof HTMLButtonElement)) {
          clickFirst("tr.triage-row--current .webmail-list__subject a");
        } else { handled = false; }
        break;
      case "x":
        if (current >= 0) {
          var box = rows[current].querySelector('input[name="entries"]');
          if (box) { box.checked = !box.checked; showCount(); }
        } else { handled = false; }
        break;
      case "I": actOn("lu"); break;
      case "U": actOn("non-lu"); break;
      case "e":
        if (form) { actOn("archiver"); } else { handled = archiveShown(); }
        break;
      case "#":
      case "Delete":
        if (form) { actOn(form.dataset.inTrash ? "supprimer" : "corbeille"); } else { handled = clickFirst('[data-shortcut="delete"]'); }
        break;
      case "v":
        var move = document.getElementById("triage-move");
        if (move) {
          move.open = true;
          var first = move.querySelector("button");
          if (first) { first.focus(); }
        } else { handled = false; }
        break;
      case "r": handled = clickFirst('button[name="mode"][value="reply"]'); break;
      case "a": handled = clickFirst('button[name="mode"][value="reply_all"]'); break;
      case "f": handled = clickFirst('button[name="mode"][value="forward"]'); break;
      case "u":
        // On a message: its "Retour à …" link (the lists have no "back").
        handled = !form && clickFirst('[data-shortcut="back"], .webmail-main > p > a.fr-icon-arrow-left-line');
        break;
      case "c": handled = clickFirst(".webmail-compose-btn"); break;
      case "/":
        var search = document.getElementById("webmail-search-input");
        if (search) { search.focus(); } else { handled = false; }
        break;
      case "g": pendingG = true; break;
      case "Escape":
        var open = document.querySelector("details.triage-move[open]");
        if (open) { open.open = false; open.querySelector("summary").focus(); } else { handled = false; }
        break;
      default: handled = false;
    }
    if (handled) { event.preventDefault(); }
  });

  // ------------------------------------------------------------------ new mail

  var notice = document.getElementById("triage-new");
  if (notice && notice.dataset.url) {
    var shown = -1;
    var poll = function () {
      if (document.visibilityState !== "visible") { return; }
      fetch(notice.dataset.url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          // Only a change is written: a polite region re-read with the same words is noise.
          if (!data || data.count === shown) { return; }
          shown = data.count;
          notice.textContent = "";
          if (data.count > 0) {
            notice.appendChild(document.createTextNode(data.text + " — "));
            var link = document.createElement("a");
            link.href = notice.dataset.reload;
            link.className = "fr-link fr-link--sm";
            link.textContent = notice.dataset.show;
            notice.appendChild(link);
          }
        })
        .catch(function () { /* offline for a moment: the next round asks again */ });
    };
    window.setInterval(poll, POLL_MS);
    document.addEventListener("visibilitychange", poll);
    window.addEventListener("focus", poll);
  }
})();
