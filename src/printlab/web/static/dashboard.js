// Keeps the dashboard current: polls the card list with its ETag (a 304 costs almost nothing),
// swaps the board when something changed, and chimes on new uploads if this browser asked to.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board) return;
  var state = document.getElementById("refresh-state");
  var toggle = document.getElementById("sound-toggle");
  var etag = board.getAttribute("data-etag");
  var uploaded = parseInt(board.getAttribute("data-uploaded"), 10);
  var SOUND_KEY = "printlab.sound";

  try { toggle.checked = window.localStorage.getItem(SOUND_KEY) === "on"; } catch (e) { /* private mode */ }
  toggle.addEventListener("change", function () {
    try { window.localStorage.setItem(SOUND_KEY, toggle.checked ? "on" : "off"); } catch (e) { /* ignore */ }
  });

  function chime() {
    if (!toggle.checked) return;
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    var audio = new Context();
    var tone = audio.createOscillator();
    var gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.6);
  }

  function poll() {
    var headers = { "Accept": "text/html" };
    if (etag) headers["If-None-Match"] = etag;
    fetch(board.getAttribute("data-refresh"), { headers: headers, cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401 || response.redirected) { state.textContent = "Signed out — reload to sign in"; return null; }
        var count = parseInt(response.headers.get("X-Uploaded-Count") || "", 10);
        if (!isNaN(count)) {
          if (!isNaN(uploaded) && count > uploaded) chime();
          uploaded = count;
        }
        etag = response.headers.get("ETag") || etag;
        if (response.status === 304) return null;
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          var focused = document.activeElement && board.contains(document.activeElement);
          if (!focused) board.innerHTML = html;  // never yank the board from under the keyboard
        }
        var now = new Date();
        state.textContent = "Updated " + now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      })
      .catch(function () { state.textContent = "Can't reach PrintLab — retrying"; })
      .then(function () { setTimeout(poll, document.hidden ? 40000 : 20000); });
  }
  setTimeout(poll, 20000);
})();
