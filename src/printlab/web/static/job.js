// Job page and action dialogs: opens each action in a <dialog> over the job page (the links still go to
// the action's own page without script), autosaves notes, holds the job's lock while an action form is
// open, shows the server's price as staff type, and copies file paths.
(function () {
  "use strict";
  var csrf = document.querySelector("input[name=csrf_token]");
  var token = csrf ? csrf.value : "";
  var KEY = "printlab.acting_as";

  // -- Acting as: chosen once per tab in the header (acting_as.js) ------------------------------
  function actingAs() {
    if (window.PrintLabActingAs) return window.PrintLabActingAs.name();
    var select = document.querySelector("select[name=acting_as]");
    return select ? select.value : "";
  }

  function post(url, fields) {
    var body = new FormData();
    body.append("csrf_token", token);
    Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" } });
  }

  // -- Notes autosave ----------------------------------------------------------------------------
  var notesForm = document.getElementById("notes-form");
  if (notesForm) {
    var notes = document.getElementById("notes");
    var notesState = document.getElementById("notes-state");
    var timer = null;
    var saved = notes.value;
    function saveNotes() {
      if (notes.value === saved) return;
      if (!actingAs()) { notesState.textContent = "Choose your name under “Acting as” at the top of the page to save notes."; return; }
      notesState.textContent = "Saving…";
      var text = notes.value;
      // The job as this page showed it: notes about a job that has moved on since are refused.
      var seen = {
        notes: text,
        acting_as: actingAs(),
        expected_status: notesForm.querySelector("input[name=expected_status]").value,
        expected_version: notesForm.querySelector("input[name=expected_version]").value
      };
      post(notesForm.action, seen)
        .then(function (r) { return r.json().then(function (j) { return [r.ok, j, r.status]; }); })
        .then(function (res) {
          if (res[0]) { saved = text; notesState.textContent = "Saved " + new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); }
          else if (res[2] === 409) { notesState.textContent = (res[1].message || "This job was changed by someone else.") + " Your notes are not saved: copy them before you reload."; }
          else { notesState.textContent = res[1].message || "Couldn't save the notes."; }
        })
        .catch(function () { notesState.textContent = "Couldn't reach PrintLab; your notes are not saved yet."; });
    }
    notes.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(saveNotes, 1200); });
    notes.addEventListener("blur", saveNotes);
    document.addEventListener("printlab:acting-as", saveNotes);
  }

  // -- Copy path ---------------------------------------------------------------------------------
  Array.prototype.forEach.call(document.querySelectorAll(".copy-path"), function (button) {
    button.addEventListener("click", function () {
      var path = button.getAttribute("data-path");
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy path"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(path).then(done);
      else window.prompt("Copy this path:", path);
    });
  });

  // -- Action dialog: lock while open, live price, one submit ------------------------------------
  // Wires one action form (on its own page, or inside the dialog); returns what closes it down.
  function actionForm(root) {
    var form = root.querySelector("#action-form");
    if (!form) return null;
    var submit = root.querySelector("#action-submit");
    var lockState = root.querySelector("#lock-state");
    var conflict = root.querySelector("#conflict");
    var holder = "";
    var heartbeat = null;

    function takeLock() {
      var name = actingAs();
      if (!name) return;
      post(form.getAttribute("data-lock-url"), { acting_as: name })
        .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
        .then(function (res) {
          if (res[0] === 200) {
            holder = name;
            lockState.hidden = true;
            if (!conflict) submit.disabled = false;
          } else {
            lockState.hidden = false;
            lockState.textContent = "" + (res[1].message || "Someone else is working on this job.");
            submit.disabled = true;
          }
        })
        .catch(function () { /* the action itself still checks; nothing to do */ });
    }
    function releaseLock() {
      if (!holder) return;
      var body = new FormData();
      body.append("csrf_token", token);
      body.append("acting_as", holder);
      if (navigator.sendBeacon) navigator.sendBeacon(form.getAttribute("data-unlock-url"), body);
      holder = "";
    }
    if (conflict) {
      // A dialog that can't act (the job changed or moved on) must not hold the job: give back the
      // lock this tab's name took before its refused submission, and take none.
      holder = actingAs();
      releaseLock();
    } else {
      takeLock();
      heartbeat = setInterval(takeLock, 60000);
    }
    function nameChanged() {
      if (holder && holder === actingAs()) return;  // the same person: the lock they hold stays
      releaseLock();
      if (!conflict) takeLock();
    }
    document.addEventListener("printlab:acting-as", nameChanged);
    var submitting = false;
    form.addEventListener("submit", function (event) {
      if (submitting) { event.preventDefault(); return; }
      submitting = true;
      submit.disabled = true;
      clearInterval(heartbeat);
      holder = "";  // the action releases the lock itself
    });
    window.addEventListener("pagehide", releaseLock);

    var priceUrl = form.getAttribute("data-price-url") || "";
    var asked = 0;  // answers can arrive out of order: only the newest question's answer is shown
    function showPrice(weightInput, method, output) {
      var weight = weightInput.value.trim();
      var ask = ++asked;
      if (!weight) { output.textContent = "—"; return; }
      var url = (priceUrl || "/api/v1/price") + "?weight_g=" + encodeURIComponent(weight) + "&method=" + encodeURIComponent(method);
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) { if (ask === asked) output.textContent = j.display || j.detail || "—"; })
        .catch(function () { if (ask === asked) output.textContent = "—"; });
    }
    var weight = root.querySelector("#weight_g");
    var material = root.querySelector("#material");
    var priceOut = root.querySelector("#price-output");
    if (weight && material && priceOut) {
      var update = function () { showPrice(weight, material.value, priceOut); };
      weight.addEventListener("input", update);
      material.addEventListener("change", update);
      update();
    }
    var weighed = root.querySelector("#weighed_g");
    var finalOut = root.querySelector("#final-output");
    var pickupMethod = root.querySelector("#pickup-method");
    if (weighed && finalOut && pickupMethod) {
      var updateFinal = function () { showPrice(weighed, pickupMethod.value, finalOut); };
      weighed.addEventListener("input", updateFinal);
      updateFinal();
    }
    // The account code is asked for only when the money moves by internal transfer.
    var codeField = root.querySelector("#account-code-field");
    var methods = root.querySelectorAll("input[name=method]");
    if (codeField && methods.length) {
      var showCode = function () {
        var chosen = root.querySelector("input[name=method]:checked");
        codeField.hidden = !(chosen && chosen.value === "ACCOUNT");
      };
      methods.forEach(function (m) { m.addEventListener("change", showCode); });
      showCode();
    }
    var summary = root.querySelector("#error-summary");
    if (summary) summary.focus();
    return function close() {
      clearInterval(heartbeat);
      document.removeEventListener("printlab:acting-as", nameChanged);
      window.removeEventListener("pagehide", releaseLock);
      if (!submitting) releaseLock();
    };
  }
  actionForm(document);

  // -- Actions as dialogs over the job page ----------------------------------------------------------
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
  function openDialog(link) {
    fetch(link.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var form = page.getElementById("action-form");
        if (!form) { window.location.href = link.href; return; }
        var dialog = document.createElement("dialog");
        dialog.className = "action-dialog";
        dialog.id = "action-dialog";
        dialog.setAttribute("aria-labelledby", "action-dialog-title");
        var title = document.createElement("h2");
        title.id = "action-dialog-title";
        title.textContent = link.textContent.replace(/…$/, "");
        dialog.appendChild(title);
        ["#conflict", "#error-summary", "#lock-state"].forEach(function (sel) {
          var part = page.querySelector(sel);
          if (part) dialog.appendChild(document.importNode(part, true));
        });
        var copy = document.importNode(form, true);
        dialog.appendChild(copy);
        document.body.appendChild(dialog);
        // The header is out of reach behind a modal dialog: the form keeps its own "Acting as".
        if (window.PrintLabActingAs) window.PrintLabActingAs.enhance(dialog, true);
        var closeForm = actionForm(dialog);
        var cancel = dialog.querySelector("#cancel-button");
        if (cancel) cancel.addEventListener("click", function (event) { event.preventDefault(); dialog.close(); });
        dialog.addEventListener("keydown", function (event) {
          if (event.key !== "Tab") return;  // keep Tab inside the dialog
          var items = Array.prototype.filter.call(dialog.querySelectorAll(FOCUSABLE), function (el) { return el.offsetParent !== null; });
          if (!items.length) return;
          var first = items[0], last = items[items.length - 1];
          if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
          else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
        });
        dialog.addEventListener("close", function () {
          if (closeForm) closeForm();
          dialog.remove();
          link.focus();
        });
        dialog.showModal();
        // A job in parts shows each part's 3D preview in the dialog too (the module draws them).
        var previews = dialog.querySelector("[data-preview-script]");
        if (previews) {
          import(previews.getAttribute("data-preview-script"))
            .then(function (module) { module.enhanceAll(dialog); })
            .catch(function () {});
        }
        var start = dialog.querySelector("#error-summary") || Array.prototype.find.call(
          dialog.querySelectorAll(FOCUSABLE), function (el) { return el.offsetParent !== null && el.name !== "acting_as"; });
        if (start) start.focus();
      })
      .catch(function () { window.location.href = link.href; });
  }
  if (typeof HTMLDialogElement === "function") {
    Array.prototype.forEach.call(document.querySelectorAll("a[data-action-dialog]"), function (link) {
      link.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;  // a new tab
        event.preventDefault();
        openDialog(link);
      });
    });
  }
})();
