// The quote form (approve, edit quote): the colour and printer lists show only the chosen print
// method's options. Without this script every option is listed, grouped by method, and the server
// refuses a colour or printer of another method with a message.
(function () {
  "use strict";
  var method = document.getElementById("material");
  if (!method) return;
  var lists = Array.prototype.slice.call(document.querySelectorAll("select[data-follows-method]"));

  // The choice made for each method (by position: "Clear" and "Gray" are colours of both methods),
  // so going back to a method brings its colour and printer back.
  var remembered = lists.map(function (list) {
    var memory = {};
    var current = list.options[list.selectedIndex];
    if (current) memory[current.getAttribute("data-method")] = list.selectedIndex;
    return memory;
  });

  function narrow(list, index) {
    var chosen = method.value;
    Array.prototype.forEach.call(list.querySelectorAll("optgroup"), function (group) {
      var fits = group.getAttribute("data-method") === chosen;
      group.hidden = !fits;
      group.disabled = !fits;
    });
    Array.prototype.forEach.call(list.options, function (option) {
      var fits = option.getAttribute("data-method") === chosen;
      option.hidden = !fits;
      option.disabled = !fits;
    });
    var current = list.options[list.selectedIndex];
    if (current && !current.disabled) return;
    var back = remembered[index][chosen];
    if (back !== undefined) {
      list.selectedIndex = back;
    } else {
      // Nothing chosen for this method yet: leave it empty, so staff choose on purpose.
      list.selectedIndex = -1;
    }
  }

  function update(announce) {
    lists.forEach(function (list, index) { narrow(list, index); });
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
  lists.forEach(function (list, index) {
    list.addEventListener("change", function () {
      var current = list.options[list.selectedIndex];
      if (current) remembered[index][current.getAttribute("data-method")] = list.selectedIndex;
      update(false);
    });
  });
  update(false);
})();
