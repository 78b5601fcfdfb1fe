// Refreshes the analysis block while the worker is still checking the model.
(function () {
  "use strict";
  var tries = 0;
  function poll() {
    var block = document.getElementById("analysis");
    if (!block || block.getAttribute("data-state") !== "PENDING" || tries > 150) return;
    tries += 1;
    fetch(block.getAttribute("data-refresh"), { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("#analysis");
          if (fresh) block.replaceWith(fresh);
        }
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1500);
})();
