// The submission form: colours and printers follow the print method, every field is checked by the
// server's own rules (carried in the fields' attributes) before anything is uploaded, the model files
// of one job are listed with their copies (added and removed one by one), the upload shows its
// progress for all of them, and the button can't send the form twice.
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

  // -- the job's files: a list kept in step with the file input, each with its copies ----------
  var list = document.getElementById("parts-list");
  var totalNote = document.getElementById("parts-total");
  var chosen = [];  // {file, copies}
  var canKeepList = (function () {
    try { return typeof DataTransfer === "function" && !!new DataTransfer().items; } catch (e) { return false; }
  })();

  function megabytes(bytes) { return (bytes / 1048576).toFixed(1) + " MB"; }

  function syncInput() {
    if (!canKeepList) return;
    var transfer = new DataTransfer();
    chosen.forEach(function (entry) { transfer.items.add(entry.file); });
    fileInput.files = transfer.files;
  }

  function renderList(focusIndex) {
    list.textContent = "";
    chosen.forEach(function (entry, index) {
      var item = document.createElement("li");
      item.className = "part-row";
      var name = document.createElement("span");
      name.className = "part-name";
      name.textContent = entry.file.name + " (" + megabytes(entry.file.size) + ")";
      var label = document.createElement("label");
      label.className = "part-copies";
      label.htmlFor = "copies-" + index;
      label.appendChild(document.createTextNode("Copies"));
      var hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = " of " + entry.file.name;
      label.appendChild(hidden);
      var copies = document.createElement("input");
      copies.type = "number";
      copies.name = "copies";
      copies.id = "copies-" + index;
      copies.min = "1";
      copies.max = String(data.max_copies);
      copies.inputMode = "numeric";
      copies.value = entry.copies;
      copies.addEventListener("input", function () { entry.copies = copies.value; });
      label.appendChild(copies);
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "part-remove";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", "Remove " + entry.file.name);
      remove.addEventListener("click", function () {
        rejection = "";
        chosen.splice(index, 1);
        syncInput();
        renderList(index);
        fieldError(fileInput, chosen.length ? fileProblem() : "");
      });
      item.appendChild(name);
      item.appendChild(label);
      if (canKeepList) item.appendChild(remove);
      list.appendChild(item);
    });
    list.hidden = chosen.length === 0;
    var total = chosen.reduce(function (sum, entry) { return sum + entry.file.size; }, 0);
    totalNote.hidden = chosen.length === 0;
    totalNote.textContent = chosen.length + " file" + (chosen.length === 1 ? "" : "s") + ", " + megabytes(total) +
      " of " + Math.round(data.job_limit_bytes / 1048576) + " MB. You can choose more files to add them.";
    if (focusIndex !== undefined) {
      var buttons = list.querySelectorAll(".part-remove");
      var target = buttons[Math.min(focusIndex, buttons.length - 1)];
      (target || fileInput).focus();
    }
  }

  // What was wrong with the files just chosen (they were not added to the list); "" when nothing.
  var rejection = "";

  fileInput.addEventListener("change", function () {
    var picked = Array.prototype.slice.call(fileInput.files || []);
    if (!canKeepList) chosen = [];  // without DataTransfer the input holds only the latest choice
    rejection = "";
    var modelChosen = picked.some(function (file) { return !oneFileProblem(file, false); });
    picked.forEach(function (file) {
      var known = chosen.some(function (entry) {
        return entry.file.name === file.name && entry.file.size === file.size && entry.file.lastModified === file.lastModified;
      });
      var problem = oneFileProblem(file, false);
      // A file the lab doesn't need (an OBJ's .mtl) beside a model is left out, as the server does;
      // any other file that can't be a model is not added, and its message says why.
      if (problem && !(modelChosen && isNotNeeded(file))) { rejection = rejection || problem; return; }
      if (!known && !problem) chosen.push({ file: file, copies: "1" });
    });
    // After a refused choice the input is left empty (the list keeps the good files), so choosing
    // the same good file again is a change the page hears; the list goes back in before sending.
    if (rejection && canKeepList) fileInput.value = "";
    else syncInput();
    renderList();
  });

  function isNotNeeded(file) {
    return Object.keys(data.not_needed || {}).some(function (ext) { return endsWith(file.name.toLowerCase(), ext); });
  }

  function endsWith(name, ext) { return name.slice(-ext.length) === ext; }

  function oneFileProblem(file, several) {
    var name = file.name.toLowerCase();
    var prefix = several ? file.name + ": " : "";
    var okType = name.slice(-4) === ".zip" || data.extensions.some(function (ext) { return endsWith(name, ext); });
    var notNeeded = Object.keys(data.not_needed || {}).filter(function (ext) { return endsWith(name, ext); });
    if (notNeeded.length && !several) return data.not_needed[notNeeded[0]];
    if (notNeeded.length) return "";  // left out beside the models, as the server does
    if (!okType) return prefix + "Upload a model file (" + data.extensions.join(", ") + ").";
    if (file.size > data.limit_bytes) {
      return prefix + "This file is " + megabytes(file.size) + "; the limit is " +
        Math.round(data.limit_bytes / 1048576) + " MB.";
    }
    if (file.size === 0) return prefix + "This file is empty.";
    return "";
  }

  function fileProblem() {
    if (rejection) return rejection;
    var files = canKeepList ? chosen.map(function (entry) { return entry.file; }) :
      Array.prototype.slice.call(fileInput.files || []);
    if (!files.length) return fileInput.hasAttribute("data-held") ? "" : fileInput.getAttribute("data-missing");
    var models = files.filter(function (file) {
      return !Object.keys(data.not_needed || {}).some(function (ext) { return endsWith(file.name.toLowerCase(), ext); });
    });
    if (models.length > data.max_parts) {
      return "One job can have up to " + data.max_parts + " model files; you chose " + models.length +
        ". Send the others as another job, or join parts in your design program.";
    }
    for (var i = 0; i < files.length; i++) {
      var problem = oneFileProblem(files[i], files.length > 1);
      if (problem) return problem;
    }
    var total = files.reduce(function (sum, file) { return sum + file.size; }, 0);
    if (total > data.job_limit_bytes) {
      return "Your files add up to " + megabytes(total) + "; one job can be up to " +
        Math.round(data.job_limit_bytes / 1048576) + " MB. Send the others as another job.";
    }
    var copies = list.querySelectorAll("input[name=copies]");
    for (var j = 0; j < copies.length; j++) {
      var value = copies[j].value.trim();
      if (value !== "" && !(/^[0-9]+$/.test(value) && +value >= 1 && +value <= data.max_copies)) {
        return "Copies of " + chosen[j].file.name + ": enter a whole number from 1 to " + data.max_copies + ".";
      }
    }
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
    syncInput();
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
    var count = (fileInput.files || []).length;
    document.getElementById("upload-label").textContent =
      count > 1 ? "Uploading " + count + " files" : "Uploading";
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var value = Math.round((e.loaded / e.total) * 100);
      bar.value = value;
      // One bar for the whole upload: every file of the job travels in the one request.
      percent.textContent = value + "% (" + megabytes(e.loaded) + " of " + megabytes(e.total) + ")";
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
      document.getElementById("upload-label").textContent = "Uploading";
    });
    xhr.send(new FormData(form));
  });

  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
