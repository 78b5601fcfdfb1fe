// The quote form (approve, edit quote): the colour and printer lists show only the chosen print
// method's options. Without this script every option is listed, grouped by method, and the server
// refuses a colour or printer of another method with a message.
(function () {
  "use strict";
  var method = document.getElementById("material");
  if (!method) return;
  var lists = Array.prototype.slice.call(document.querySelectorAll("select[data-follows-method]"));

  function narrow(list) {
    var chosen = method.value;
    var keep = null;
    Array.prototype.forEach.call(list.querySelectorAll("optgroup"), function (group) {
      var fits = group.getAttribute("data-method") === chosen;
      group.hidden = !fits;
      group.disabled = !fits;
    });
    Array.prototype.forEach.call(list.options, function (option) {
      var fits = option.getAttribute("data-method") === chosen;
      option.hidden = !fits;
      option.disabled = !fits;
      if (fits && keep === null) keep = option;
    });
    var current = list.options[list.selectedIndex];
    if (!current || current.disabled) {
      // The old choice belongs to another method: start from nothing, so staff choose on purpose.
      list.value = "";
      if (keep === null) return;
      list.selectedIndex = -1;
    }
  }

  function update(announce) {
    lists.forEach(narrow);
    var unchosen = lists.filter(function (list) { return list.selectedIndex < 0; });
    var note = document.getElementById("method-note");
    if (!note) return;
    if (announce && unchosen.length) {
      note.hidden = false;
      note.textContent = "Choose a " + method.value + " " +
        unchosen.map(function (list) { return list.id === "color" ? "color" : "printer"; }).join(" and ") + ".";
    } else if (!unchosen.length) {
      note.hidden = true;
      note.textContent = "";
    }
  }

  method.addEventListener("change", function () { update(true); });
  lists.forEach(function (list) { list.addEventListener("change", function () { update(false); }); });
  update(false);
})();
