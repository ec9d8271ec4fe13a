/* airflow-failnotify views: small progressive enhancements. The server validates everything. */
(function () {
  "use strict";

  function toggleThreshold(box) {
    var group = document.getElementById(box.getAttribute("data-threshold"));
    if (!group) { return; }
    // Shown only when not immediate, or when the server flagged it (so the message is visible).
    group.hidden = box.checked && group.getAttribute("data-has-error") !== "yes";
  }

  function toggleSubsections() {
    var subs = document.querySelectorAll("[data-enabled-by]");
    for (var i = 0; i < subs.length; i++) {
      var box = document.getElementById(subs[i].getAttribute("data-enabled-by"));
      if (box) { subs[i].classList.toggle("failnotify-muted", !box.checked); }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var immediates = document.querySelectorAll("input.failnotify-immediate");
    for (var i = 0; i < immediates.length; i++) {
      toggleThreshold(immediates[i]);
      immediates[i].addEventListener("change", function (ev) { toggleThreshold(ev.target); });
    }
    toggleSubsections();
    var toggles = document.querySelectorAll("[data-enabled-by]");
    for (var j = 0; j < toggles.length; j++) {
      var box = document.getElementById(toggles[j].getAttribute("data-enabled-by"));
      if (box) { box.addEventListener("change", toggleSubsections); }
    }

    var same = document.getElementById("same_for_backward");
    var backward = document.getElementById("failnotify-backward");
    if (same && backward) {
      same.addEventListener("change", function () { backward.hidden = same.checked; });
    }

    var all = document.getElementById("failnotify-select-all");
    if (all) {
      all.addEventListener("change", function () {
        var boxes = document.querySelectorAll("input.failnotify-select");
        for (var k = 0; k < boxes.length; k++) { boxes[k].checked = all.checked; }
      });
    }
  });
})();
