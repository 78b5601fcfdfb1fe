// Job page and action dialogs: remembers "Acting as" for this tab, autosaves notes, holds the job's
// lock while a dialog is open, shows the server's price as staff type, and copies file paths.
(function () {
  "use strict";
  var csrf = document.querySelector("input[name=csrf_token]");
  var token = csrf ? csrf.value : "";
  var KEY = "printlab.acting_as";

  // -- Acting as: one choice per tab, applied to every form on the page --------------------------
  var pickers = Array.prototype.slice.call(document.querySelectorAll("select[data-remember]"));
  function remembered() { try { return window.sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; } }
  function applyName(name) {
    pickers.forEach(function (select) {
      if (!name) return;
      var exists = Array.prototype.some.call(select.options, function (o) { return o.value === name; });
      if (exists && !select.value) select.value = name;
    });
  }
  applyName(remembered());
  pickers.forEach(function (select) {
    select.addEventListener("change", function () {
      try { window.sessionStorage.setItem(KEY, select.value); } catch (e) { /* ignore */ }
      pickers.forEach(function (other) { if (other !== select) other.value = select.value; });
      document.dispatchEvent(new CustomEvent("printlab:acting-as", { detail: select.value }));
    });
  });
  function actingAs() { return pickers.length ? pickers[0].value : ""; }

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
      if (!actingAs()) { notesState.textContent = "Choose your name under “Acting as” to save notes."; return; }
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
  var form = document.getElementById("action-form");
  if (!form) return;
  var submit = document.getElementById("action-submit");
  var lockState = document.getElementById("lock-state");
  var conflict = document.getElementById("conflict");
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
  document.addEventListener("printlab:acting-as", function () { releaseLock(); if (!conflict) takeLock(); });
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
      .then(function (j) { if (ask === asked) output.textContent = j.display || j.error || "—"; })
      .catch(function () { if (ask === asked) output.textContent = "—"; });
  }
  var weight = document.getElementById("weight_g");
  var material = document.getElementById("material");
  var priceOut = document.getElementById("price-output");
  if (weight && material && priceOut) {
    var update = function () { showPrice(weight, material.value, priceOut); };
    weight.addEventListener("input", update);
    material.addEventListener("change", update);
    update();
  }
  var weighed = document.getElementById("weighed_g");
  var finalOut = document.getElementById("final-output");
  var pickupMethod = document.getElementById("pickup-method");
  if (weighed && finalOut && pickupMethod) {
    var updateFinal = function () { showPrice(weighed, pickupMethod.value, finalOut); };
    weighed.addEventListener("input", updateFinal);
    updateFinal();
  }
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
