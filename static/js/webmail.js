// Webmail enhancements. Every feature works without this file; it adds confirmations.
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

  // The compose page (autosave on leaving, upload progress, rich text): static/js/compose.js.
})();
