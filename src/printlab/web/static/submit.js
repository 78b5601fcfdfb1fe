// The submission form: colours and printers follow the print method, the file is checked at once,
// the upload shows its progress, and the button can't send the form twice.
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
      if (existing && existing.getAttribute("data-client")) existing.remove();
      input.removeAttribute("aria-invalid");
      return;
    }
    if (!existing) {
      existing = document.createElement("p");
      existing.className = "field-error";
      existing.id = id;
      existing.setAttribute("data-client", "1");
      input.parentNode.appendChild(existing);
      var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (described.indexOf(id) < 0) described.push(id);
      input.setAttribute("aria-describedby", described.join(" "));
    }
    existing.textContent = message;
    input.setAttribute("aria-invalid", "true");
  }

  function checkFile() {
    var file = fileInput.files && fileInput.files[0];
    if (!file) { fieldError(fileInput, ""); return true; }
    var name = file.name.toLowerCase();
    var okType = data.extensions.some(function (ext) { return name.slice(-ext.length) === ext; });
    var notNeeded = Object.keys(data.not_needed || {}).filter(function (ext) { return name.slice(-ext.length) === ext; });
    if (notNeeded.length) {
      fieldError(fileInput, data.not_needed[notNeeded[0]]);
      return false;
    }
    if (!okType) {
      fieldError(fileInput, "Upload a model file (" + data.extensions.join(", ") + ").");
      return false;
    }
    if (file.size > data.limit_bytes) {
      fieldError(fileInput, "This file is " + (file.size / 1048576).toFixed(1) + " MB; the limit is " +
        Math.round(data.limit_bytes / 1048576) + " MB.");
      return false;
    }
    if (file.size === 0) { fieldError(fileInput, "This file is empty."); return false; }
    fieldError(fileInput, "");
    return true;
  }
  fileInput.addEventListener("change", checkFile);

  var sending = false;
  form.addEventListener("submit", function (event) {
    if (sending) { event.preventDefault(); return; }
    if (!checkFile()) { event.preventDefault(); fileInput.focus(); return; }
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
