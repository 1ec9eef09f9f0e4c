// Directory suggestions for recipient fields: progressive enhancement of any
// <input data-directory-autocomplete> (the value may name the JSON endpoint;
// default /annuaire/autocomplete). Without this file the field stays a plain
// comma-separated list of addresses. ARIA 1.2 combobox pattern: the input
// owns a listbox, arrows move the active option, Enter or a click picks it,
// Escape closes. Picking replaces the word being typed (the text after the
// last comma) with the chosen address.
(function () {
  "use strict";

  var MIN_CHARS = 2;
  var DELAY_MS = 150;
  var counter = 0;

  function currentTerm(value) {
    var parts = value.split(",");
    return parts[parts.length - 1].trim();
  }

  function setup(input) {
    var endpoint = input.getAttribute("data-directory-autocomplete") || "/annuaire/autocomplete";
    var id = input.id || "directory-ac-" + (++counter);
    input.id = id;
    var listbox = document.createElement("ul");
    listbox.id = id + "-listbox";
    listbox.setAttribute("role", "listbox");
    listbox.setAttribute("aria-label", input.getAttribute("data-directory-label") || "Suggestions de l'annuaire");
    listbox.className = "directory-ac__list";
    listbox.hidden = true;
    var style = listbox.style;
    style.position = "absolute";
    style.zIndex = "1000";
    style.listStyle = "none";
    style.margin = "0";
    style.padding = "0";
    style.background = "var(--background-default-grey, #fff)";
    style.border = "1px solid var(--border-default-grey, #ddd)";
    style.maxHeight = "20rem";
    style.overflowY = "auto";
    style.minWidth = "20rem";

    var status = document.createElement("p");
    status.className = "fr-sr-only";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");

    var wrapper = input.parentNode;
    if (wrapper && getComputedStyle(wrapper).position === "static") {
      wrapper.style.position = "relative";
    }
    input.insertAdjacentElement("afterend", listbox);
    listbox.insertAdjacentElement("afterend", status);

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", listbox.id);
    input.setAttribute("autocomplete", "off");

    var items = [];
    var active = -1;
    var timer = null;
    var latest = 0;

    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      var options = listbox.children;
      for (var i = 0; i < options.length; i++) {
        var selected = i === index;
        options[i].setAttribute("aria-selected", selected ? "true" : "false");
        options[i].style.background = selected ? "var(--background-action-low-blue-france, #e3e3fd)" : "";
      }
      active = index;
      if (index >= 0 && options[index]) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(index) {
      var item = items[index];
      if (!item) return;
      var parts = input.value.split(",");
      parts[parts.length - 1] = " " + item.address;
      var value = parts.map(function (p) { return p.trim(); }).filter(Boolean).join(", ");
      input.value = value + ", ";
      close();
      input.focus();
      input.dispatchEvent(new Event("input", { bubbles: true }));
      input.dispatchEvent(new CustomEvent("directory:chosen", { bubbles: true, detail: item }));
    }

    function render(results) {
      items = results;
      listbox.textContent = "";
      results.forEach(function (item, i) {
        var option = document.createElement("li");
        option.id = listbox.id + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.style.padding = "0.5rem 0.75rem";
        option.style.cursor = "pointer";
        var name = document.createElement("strong");
        name.textContent = item.name;
        option.appendChild(name);
        var details = [item.profession, item.city].filter(Boolean).join(" — ");
        if (details) {
          option.appendChild(document.createTextNode(" " + details));
        }
        var address = document.createElement("span");
        address.className = "fr-text--xs";
        address.style.display = "block";
        address.textContent = item.address;
        option.appendChild(address);
        // mousedown, not click: it fires before the input's blur closes the list.
        option.addEventListener("mousedown", function (event) {
          event.preventDefault();
          choose(i);
        });
        listbox.appendChild(option);
      });
      if (results.length) {
        listbox.hidden = false;
        input.setAttribute("aria-expanded", "true");
        highlight(-1);
      } else {
        close();
      }
      status.textContent = results.length
        ? results.length + (results.length > 1 ? " suggestions" : " suggestion")
        : "Aucune suggestion";
    }

    function lookup() {
      var term = currentTerm(input.value);
      if (term.length < MIN_CHARS) {
        items = [];
        close();
        return;
      }
      var ticket = ++latest;
      fetch(endpoint + "?q=" + encodeURIComponent(term), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (results) {
          // Answers can arrive out of order: only the latest one is shown.
          if (ticket === latest) render(Array.isArray(results) ? results : []);
        })
        .catch(function () { if (ticket === latest) close(); });
    }

    input.addEventListener("input", function (event) {
      if (event instanceof CustomEvent) return;
      clearTimeout(timer);
      timer = setTimeout(lookup, DELAY_MS);
    });

    input.addEventListener("keydown", function (event) {
      var open = !listbox.hidden && items.length > 0;
      if (event.key === "ArrowDown") {
        if (!open) { lookup(); return; }
        event.preventDefault();
        highlight((active + 1) % items.length);
      } else if (event.key === "ArrowUp" && open) {
        event.preventDefault();
        highlight(active <= 0 ? items.length - 1 : active - 1);
      } else if (event.key === "Enter" && open && active >= 0) {
        event.preventDefault();
        choose(active);
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        close();
      }
    });

    input.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  function init(root) {
    var inputs = (root || document).querySelectorAll("input[data-directory-autocomplete]");
    for (var i = 0; i < inputs.length; i++) {
      if (!inputs[i].hasAttribute("data-directory-ready")) {
        inputs[i].setAttribute("data-directory-ready", "");
        setup(inputs[i]);
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(); });
  } else {
    init();
  }
  // Fields swapped in by htmx get the behaviour too.
  document.addEventListener("htmx:load", function (event) { init(event.target); });
})();
