// The reading pages: the print page's button. Everything works without it (the browser's
// own Print command prints the same page).
(function () {
  "use strict";

  var print = document.getElementById("print-button");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () {
      window.print();
    });
  }
})();
