// "Acting as", chosen once per browser tab: the header's choice is remembered in sessionStorage and
// fills a hidden acting_as field in every form on the page (each form's own select is the no-script way).
(function () {
  "use strict";
  var KEY = "printlab.acting_as";
  var control = document.getElementById("acting-as-control");
  var choice = document.getElementById("acting-as-choice");
  if (!control || !choice) return;

  function offered(name) {
    return !!name && Array.prototype.some.call(choice.options, function (o) { return o.value === name; });
  }
  function remembered() { try { return window.sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; } }
  function remember(name) { try { window.sessionStorage.setItem(KEY, name); } catch (e) { /* private mode */ } }

  // The hidden fields that carry the choice, one per form; a select kept visible (inside an action
  // dialog, where the header can't be reached) follows the choice too.
  function fields(root) { return (root || document).querySelectorAll("input[data-acting-as], select[data-remember]"); }
  function fill(root) {
    Array.prototype.forEach.call(fields(root), function (field) { field.value = choice.value; });
  }

  // Each form's select becomes a hidden field; a message the server gave about it stays in view.
  function enhance(root, inDialog) {
    Array.prototype.forEach.call((root || document).querySelectorAll("[data-acting-as-field]"), function (wrapper) {
      var select = wrapper.querySelector("select[name=acting_as]");
      if (!select) return;
      if (inDialog && !choice.value) {
        // No name chosen yet and the header out of reach (a modal dialog): choose it here.
        select.addEventListener("change", function () { set(select.value); });
        return;
      }
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = "acting_as";
      hidden.id = select.id;
      hidden.setAttribute("data-acting-as", "");
      select.replaceWith(hidden);
      var label = wrapper.querySelector("label");
      if (label) label.remove();
      if (inDialog) {
        // In a dialog the header can't be reached: say who is acting (changed in the header).
        var note = document.createElement("p");
        note.className = "acting-as-note";
        note.appendChild(document.createTextNode("Acting as "));
        var who = document.createElement("strong");
        who.textContent = choice.value;
        note.appendChild(who);
        wrapper.insertBefore(note, wrapper.firstChild);
      } else if (!wrapper.querySelector(".field-error")) {
        wrapper.hidden = true;
      }
    });
    fill(root);
  }

  function set(name) {
    choice.value = offered(name) ? name : "";
    remember(choice.value);
    fill(document);
    document.dispatchEvent(new CustomEvent("printlab:acting-as", { detail: choice.value }));
  }

  // The name this tab chose, else the one a form was sent with (a page shown again after a refusal).
  var start = remembered();
  if (!offered(start)) {
    var sent = Array.prototype.find.call(fields(document), function (f) { return offered(f.value); });
    start = sent ? sent.value : "";
  }
  choice.value = offered(start) ? start : "";
  if (choice.value) remember(choice.value);
  control.hidden = false;
  enhance(document, false);
  choice.addEventListener("change", function () { set(choice.value); });

  window.PrintLabActingAs = {
    name: function () { return choice.value; },
    set: set,
    enhance: enhance,
    control: control
  };
})();
