// The patient space's sections scroll sideways on a phone: bring the current one into view.
(function () {
  "use strict";
  var current = document.querySelector('.patient-nav [aria-current="page"]');
  var strip = current && current.closest("ul");
  if (!strip || strip.scrollWidth <= strip.clientWidth) {
    return;
  }
  var item = current.parentElement;
  strip.scrollLeft = item.offsetLeft - (strip.clientWidth - item.offsetWidth) / 2;
})();
