// The submission form: colours and printers follow the print method, every field is checked by the
// server's own rules (carried in the fields' attributes) before anything is uploaded, the upload shows
// its progress, and the button can't send the form twice.
(function () {
  "use strict";
  var form = document.getElementById("submit-form");
  if (!form) return;
  var data = JSON.parse(document.getElementById("form-data").textContent);
  var color = document.getElementById("color");
  var printer = document.getElementById("printer");
  var fileInput = document.getElementById("file");
  var button = document.getElementById("submit-button");

  function chosenMethod() {
    var checked = form.querySelector("input[name=print_method]:checked");
    return checked ? checked.value : "";
  }

  function narrow(select, method) {
    var keep = false;
    Array.prototype.forEach.call(select.options, function (option) {
      if (!option.value) {
        option.textContent = method ? "Choose…" : "Choose a print method first";
        return;
      }
      var fits = option.getAttribute("data-method") === method;
      option.hidden = !fits;
      option.disabled = !fits;
      if (option.selected && fits) keep = true;
    });
    if (!keep) select.value = "";  // a colour or printer of the other method is cleared
    select.disabled = !method;
  }

  function onMethodChange() {
    var method = chosenMethod();
    narrow(color, method);
    narrow(printer, method);
  }
  Array.prototype.forEach.call(form.querySelectorAll("input[name=print_method]"), function (radio) {
    radio.addEventListener("change", onMethodChange);
  });
  onMethodChange();

  function fieldError(input, message) {
    var id = input.id + "-error";
    var existing = document.getElementById(id);
    if (!message) {
      if (existing) existing.remove();
      input.removeAttribute("aria-invalid");
      var left = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (ref) {
        return ref && ref !== id;
      });
      if (left.length) input.setAttribute("aria-describedby", left.join(" "));
      else input.removeAttribute("aria-describedby");
      return;
    }
    if (!existing) {
      existing = document.createElement("p");
      existing.className = "field-error";
      existing.id = id;
      input.closest(".field").appendChild(existing);
      var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (described.indexOf(id) < 0) described.push(id);
      input.setAttribute("aria-describedby", described.join(" "));
    }
    existing.textContent = message;
    // A group of radios is described by its message; aria-invalid belongs on the fields themselves.
    if (input.tagName !== "FIELDSET") input.setAttribute("aria-invalid", "true");
  }

  function fileProblem() {
    var file = fileInput.files && fileInput.files[0];
    if (!file) return fileInput.hasAttribute("data-held") ? "" : fileInput.getAttribute("data-missing");
    var name = file.name.toLowerCase();
    var okType = data.extensions.some(function (ext) { return name.slice(-ext.length) === ext; });
    var notNeeded = Object.keys(data.not_needed || {}).filter(function (ext) { return name.slice(-ext.length) === ext; });
    if (notNeeded.length) return data.not_needed[notNeeded[0]];
    if (!okType) return "Upload a model file (" + data.extensions.join(", ") + ").";
    if (file.size > data.limit_bytes) {
      return "This file is " + (file.size / 1048576).toFixed(1) + " MB; the limit is " +
        Math.round(data.limit_bytes / 1048576) + " MB.";
    }
    if (file.size === 0) return "This file is empty.";
    return "";
  }

  function matches(pattern, value) {
    var expression;
    try { expression = new RegExp("^(?:" + pattern + ")$", "v"); }  // as the pattern attribute reads it
    catch (e) { expression = new RegExp("^(?:" + pattern + ")$", "u"); }
    return expression.test(value);
  }

  // What is wrong with one field by the server's rule, in its words ("" when nothing).
  function problemOf(field) {
    var message = field.getAttribute("data-message") || "";
    if (field === fileInput) return fileProblem();
    if (field.id === "print_method") return chosenMethod() ? "" : message;
    if (field.type === "checkbox") return field.checked ? "" : message;
    if (field.tagName === "SELECT") {
      if (field === color || field === printer) {
        if (!chosenMethod()) return "";  // the print method's own message says what to do
        message = message.replace("{method}", chosenMethod());
      }
      return field.value ? "" : message;
    }
    var value = field.value.replace(/\s+/g, " ").trim();  // the server collapses spaces too
    if (!value) return field.getAttribute("data-missing") || message;
    if (field.minLength > 0 && value.length < field.minLength) return message;
    if (field.maxLength > 0 && value.length > field.maxLength) return message;
    if (field.pattern && !matches(field.pattern, value)) return message;
    return "";
  }

  var checked = Array.prototype.slice.call(form.querySelectorAll("[data-message], [data-missing]"));

  function showSummary(problems) {
    var old = document.getElementById("error-summary");
    if (old) old.remove();
    var summary = document.createElement("div");
    summary.className = "error-summary";
    summary.id = "error-summary";
    summary.setAttribute("role", "alert");
    summary.tabIndex = -1;
    var heading = document.createElement("h2");
    heading.textContent = "Please fix " + problems.length + " thing" + (problems.length === 1 ? "" : "s");
    var list = document.createElement("ul");
    problems.forEach(function (problem) {
      var link = document.createElement("a");
      link.href = "#" + problem.field.id;
      link.textContent = problem.message;
      var item = document.createElement("li");
      item.appendChild(link);
      list.appendChild(item);
    });
    summary.appendChild(heading);
    summary.appendChild(list);
    form.parentNode.insertBefore(summary, form);
    summary.focus();
  }

  // Every field, in the form's order; true when all are fine.
  function checkAll() {
    var problems = [];
    checked.forEach(function (field) {
      var message = problemOf(field);
      fieldError(field, message);
      if (message) problems.push({ field: field, message: message });
    });
    if (problems.length) showSummary(problems);
    return problems.length === 0;
  }

  // A field flagged once is checked again as it is corrected; the file as soon as it is chosen.
  form.addEventListener("change", function (event) {
    var field = event.target.name === "print_method" ? document.getElementById("print_method") : event.target;
    if (field === fileInput || document.getElementById(field.id + "-error")) fieldError(field, problemOf(field));
  });
  form.addEventListener("input", function (event) {
    if (document.getElementById(event.target.id + "-error")) fieldError(event.target, problemOf(event.target));
  });

  var sending = false;
  form.addEventListener("submit", function (event) {
    if (sending) { event.preventDefault(); return; }
    if (!checkAll()) { event.preventDefault(); return; }
    if (!window.FormData || !window.XMLHttpRequest) { sending = true; button.disabled = true; return; }
    event.preventDefault();
    sending = true;
    button.disabled = true;
    button.textContent = "Sending…";
    var progress = document.getElementById("upload-progress");
    var bar = document.getElementById("upload-bar");
    var percent = document.getElementById("upload-percent");
    progress.hidden = false;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var value = Math.round((e.loaded / e.total) * 100);
      bar.value = value;
      percent.textContent = value + "%";
    });
    xhr.addEventListener("load", function () {
      if (xhr.responseURL && xhr.responseURL.indexOf("/submit/done/") >= 0) {
        window.location.assign(xhr.responseURL);
        return;
      }
      // The server answered with the form and its messages (or an error page): show it as is.
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", function () {
      sending = false;
      button.disabled = false;
      button.textContent = "Send my model";
      progress.hidden = true;
      fieldError(fileInput, "The upload was interrupted. Check your connection and send it again.");
    });
    xhr.send(new FormData(form));
  });

  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
