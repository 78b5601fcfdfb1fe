// The printer board: keeps the lanes current (polling with their ETag: a 304 costs almost nothing),
// sends "Move up" / "Move down" without leaving the page (focus stays on the moved job), and lets a
// job be dragged by its handle (mouse, pen or touch) to another place in its queue. Without this
// script every button is a plain form and the board reloads to show the new order.
(function () {
  "use strict";
  var lanes = document.getElementById("lanes");
  if (!lanes) return;
  var state = document.getElementById("refresh-state");
  var announce = document.getElementById("board-status");
  var etag = lanes.getAttribute("data-etag");
  var dragging = null;
  lanes.classList.add("can-drag");

  function say(message) {
    announce.textContent = "";
    window.setTimeout(function () { announce.textContent = message; }, 50);
  }

  function load(force) {
    var headers = { "Accept": "text/html" };
    if (etag && !force) headers["If-None-Match"] = etag;
    return fetch(lanes.getAttribute("data-refresh"), { headers: headers, cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401 || response.redirected) { state.textContent = "Signed out — reload to sign in"; return null; }
        etag = response.headers.get("ETag") || etag;
        if (response.status === 304) return null;
        return response.ok ? response.text() : null;
      });
  }

  function poll() {
    load(false)
      .then(function (html) {
        var focused = document.activeElement && lanes.contains(document.activeElement);
        // Never yank the lanes from under the keyboard or a drag.
        if (html !== null && html !== undefined && !focused && !dragging) lanes.innerHTML = html;
        state.textContent = "Updated " + new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      })
      .catch(function () { state.textContent = "Can't reach PrintLab — retrying"; })
      .then(function () { setTimeout(poll, document.hidden ? 40000 : 15000); });
  }

  function send(form, place, direction) {
    var data = new FormData(form);
    data.set("place", String(place));
    var job = data.get("job");
    return fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    })
      .then(function (response) {
        return response.json().catch(function () { return { ok: false, message: "PrintLab couldn't move the job; reload the board." }; });
      })
      .then(function (answer) {
        return load(true).then(function (html) {
          if (html) lanes.innerHTML = html;
          say(answer.message);
          refocus(job, direction);
        });
      })
      .catch(function () { say("Can't reach PrintLab; nothing was moved."); });
  }

  // After a move the same job's button keeps the focus (the other one when it reached an end).
  function refocus(job, direction) {
    var item = document.getElementById("q-" + job);
    if (!item) return;
    var wanted = item.querySelector('button[data-move="' + direction + '"]:not([disabled])')
      || item.querySelector("button:not([disabled])") || item.querySelector("a");
    if (wanted) wanted.focus();
  }

  lanes.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("move-form")) return;
    var button = event.submitter;
    if (!button || !button.getAttribute("data-move")) return;
    event.preventDefault();
    send(form, button.value, button.getAttribute("data-move"));
  });

  // Dragging: the handle follows the pointer; the job moves among its queue's items as it passes
  // their middles; letting go sends its new place with the queue as it was shown.
  lanes.addEventListener("pointerdown", function (event) {
    var grip = event.target.closest && event.target.closest(".grip");
    if (!grip || (event.pointerType === "mouse" && event.button !== 0)) return;
    var item = grip.closest(".queued");
    var list = item && item.parentElement;
    if (!list) return;
    event.preventDefault();
    grip.setPointerCapture(event.pointerId);
    dragging = { item: item, list: list, grip: grip, from: Array.prototype.indexOf.call(list.children, item) };
    item.classList.add("dragging");
  });

  lanes.addEventListener("pointermove", function (event) {
    if (!dragging) return;
    var siblings = Array.prototype.filter.call(dragging.list.children, function (el) { return el !== dragging.item; });
    var before = null;
    for (var i = 0; i < siblings.length; i++) {
      var box = siblings[i].getBoundingClientRect();
      if (event.clientY < box.top + box.height / 2) { before = siblings[i]; break; }
    }
    if (before !== dragging.item.nextElementSibling || (!before && dragging.list.lastElementChild !== dragging.item)) {
      dragging.list.insertBefore(dragging.item, before);
    }
  });

  function drop(event) {
    if (!dragging) return;
    var done = dragging;
    dragging = null;
    done.item.classList.remove("dragging");
    if (done.grip.hasPointerCapture && done.grip.hasPointerCapture(event.pointerId)) done.grip.releasePointerCapture(event.pointerId);
    var to = Array.prototype.indexOf.call(done.list.children, done.item);
    if (event.type === "pointercancel" || to === done.from) {
      if (to !== done.from) load(true).then(function (html) { if (html) lanes.innerHTML = html; });
      return;
    }
    send(done.item.querySelector(".move-form"), to + 1, to < done.from ? "up" : "down");
  }
  lanes.addEventListener("pointerup", drop);
  lanes.addEventListener("pointercancel", drop);

  setTimeout(poll, 15000);
})();
