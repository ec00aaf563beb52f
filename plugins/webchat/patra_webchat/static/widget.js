/* Patra website chat widget. Plain JavaScript, no build step.
 *
 * Embedded with <script src="https://patra.example/widget/INBOX.js" async>.
 * Everything lives in a Shadow DOM; styles are constructable stylesheets, so a
 * strict Content-Security-Policy on the host page does not block them.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var source = script && new URL(script.src, location.href);
  var found = source && source.pathname.match(/^(.*)\/widget\/(\d+)\.js$/);
  if (!found || window.__patraChat && window.__patraChat[source.href]) return;
  window.__patraChat = window.__patraChat || {};
  window.__patraChat[source.href] = true;

  var API = source.origin + found[1] + "/widget/" + found[2];
  var STORE = "patra-chat:" + API;
  var T = {
    open: "Open chat", close: "Close chat", title: "Chat with us",
    messages: "Messages", message: "Your message", send: "Send",
    attach: "Attach a file", name: "Name", email: "Email",
    start: "Start chat", retry: "Retry", sending: "Sending…",
    failed: "Not sent.", offline: "You seem to be offline; we will keep trying.",
    expired: "Your chat session ended; start a new chat.", you: "You",
    unread: "new messages", placeholder: "Write a message…"
  };
  var RETRIES = 5;

  var saved = load();
  var token = saved.token || "";
  var cursor = 0; // after a reload the whole conversation is fetched again
  var seen = {};
  var config = null;
  var events = null;
  var reconnectDelay = 1000;
  var isOpen = false;
  var unread = 0;

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE)) || {}; }
    catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(STORE, JSON.stringify({ token: token })); }
    catch (e) { /* storage blocked: the chat lasts as long as the page */ }
  }
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (attrs[name] === true) node.setAttribute(name, "");
      else if (attrs[name] !== false && attrs[name] != null) node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function call(path, options) {
    options = options || {};
    var headers = options.headers || {};
    if (token) headers.Authorization = "Bearer " + token;
    options.headers = headers;
    options.mode = "cors";
    options.credentials = "omit";
    return fetch(API + path, options);
  }
  function errorText(response) {
    return response.json().then(function (body) { return body.error || T.failed; },
      function () { return T.failed; });
  }

  var CSS = [
    ":host{all:initial;position:fixed;bottom:20px;inset-inline-end:20px;z-index:2147483000;",
    "font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2937;--accent:#2563eb}",
    "*{box-sizing:border-box}",
    "button,input,textarea{font:inherit;color:inherit}",
    ":focus-visible{outline:3px solid var(--accent);outline-offset:2px}",
    ".launcher{display:flex;align-items:center;gap:.5em;border:0;border-radius:999px;",
    "padding:.8em 1.2em;background:var(--accent);color:#fff;font-weight:600;cursor:pointer;",
    "box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".launcher[aria-expanded=true]{display:none}",
    ".badge{background:#dc2626;border-radius:999px;padding:0 .5em;font-size:.8em}",
    ".panel{display:flex;flex-direction:column;width:min(380px,calc(100vw - 24px));",
    "height:min(560px,calc(100vh - 40px));background:#fff;border-radius:12px;overflow:hidden;",
    "box-shadow:0 10px 40px rgba(0,0,0,.3)}",
    ".panel[hidden],[hidden]{display:none}",
    ".head{display:flex;align-items:center;justify-content:space-between;",
    "padding:.75em 1em;background:var(--accent);color:#fff}",
    ".head h2{font-size:1.05em;margin:0}",
    ".close{background:transparent;border:0;color:#fff;font-size:1.4em;line-height:1;",
    "cursor:pointer;padding:.1em .4em;border-radius:6px}",
    ".log{flex:1;overflow-y:auto;margin:0;padding:1em;list-style:none;display:flex;",
    "flex-direction:column;gap:.5em;background:#f9fafb}",
    ".msg{max-width:85%;padding:.5em .8em;border-radius:12px;background:#fff;",
    "border:1px solid #e5e7eb;overflow-wrap:anywhere}",
    ".msg p{margin:0;white-space:pre-wrap}",
    ".visitor{align-self:flex-end;background:var(--accent);color:#fff;border-color:transparent}",
    ".visitor a{color:#fff}",
    ".who{display:block;font-size:.8em;color:#6b7280}",
    ".pending{opacity:.7}",
    ".failed{background:#fef2f2;color:#991b1b;border-color:#fca5a5}",
    ".failed button{margin-inline-start:.5em;border:1px solid currentColor;background:#fff;",
    "border-radius:6px;cursor:pointer}",
    ".why{font-size:.85em;margin-top:.3em}",
    ".greeting{align-self:flex-start}",
    ".status{margin:0;padding:0 1em;font-size:.85em;color:#991b1b}",
    ".status:empty{display:none}",
    "form{display:flex;gap:.5em;padding:.75em;border-top:1px solid #e5e7eb;align-items:flex-end}",
    ".prechat{flex-direction:column;align-items:stretch}",
    "label{font-size:.85em;color:#374151}",
    "input[type=text],input[type=email],textarea{width:100%;border:1px solid #d1d5db;",
    "border-radius:8px;padding:.5em .6em;background:#fff}",
    "textarea{flex:1;resize:none;min-height:2.6em;max-height:8em}",
    ".send,.start{border:0;border-radius:8px;padding:.55em 1em;background:var(--accent);",
    "color:#fff;font-weight:600;cursor:pointer}",
    ".attach{display:inline-flex;cursor:pointer;padding:.5em;border-radius:8px;",
    "border:1px solid #d1d5db;background:#fff;font-size:1em}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);",
    "white-space:nowrap}",
    ".file{position:absolute;width:1px;height:1px;opacity:0}",
    ".attach:focus-within{outline:3px solid var(--accent);outline-offset:2px}",
    "@media (max-width:480px){:host{bottom:8px;inset-inline-end:8px}",
    ".panel{width:calc(100vw - 16px);height:calc(100vh - 16px)}}"
  ].join("");

  function applyStyles(root, color) {
    var text = CSS + (/^#[0-9a-fA-F]{3,6}$/.test(color || "") ? ":host{--accent:" + color + "}" : "");
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(text);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", { text: text }));
    }
  }

  // --- the interface -------------------------------------------------------

  function clip() {
    var ns = "http://www.w3.org/2000/svg";
    var icon = document.createElementNS(ns, "svg");
    var path = document.createElementNS(ns, "path");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("width", "20");
    icon.setAttribute("height", "20");
    icon.setAttribute("aria-hidden", "true");
    path.setAttribute("d", "M16.5 6.5l-8 8a2 2 0 0 0 2.8 2.8l8.5-8.5a4 4 0 0 0-5.7-5.7L5.5 11.7" +
      "a6 6 0 0 0 8.5 8.5l6.5-6.5");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round");
    icon.appendChild(path);
    return icon;
  }

  var host = el("div", { id: "patra-chat" });
  var root = host.attachShadow({ mode: "open" });
  var badge = el("span", { class: "badge", hidden: true, "aria-hidden": "true" });
  var launcherLabel = el("span", { text: T.title });
  var launcher = el("button", {
    type: "button", class: "launcher", "aria-label": T.open,
    "aria-expanded": "false", "aria-controls": "patra-panel"
  }, [launcherLabel, badge]);
  var closeButton = el("button", { type: "button", class: "close", "aria-label": T.close, text: "×" });
  var log = el("ol", { class: "log", role: "log", "aria-live": "polite", "aria-label": T.messages });
  var greeting = el("li", { class: "msg greeting", hidden: true }, [el("p", { dir: "auto" })]);
  log.appendChild(greeting);
  var status = el("p", { class: "status", role: "status" });

  var nameInput = el("input", { type: "text", id: "patra-name", name: "name", autocomplete: "name", maxlength: "100" });
  var emailInput = el("input", { type: "email", id: "patra-email", name: "email", autocomplete: "email", maxlength: "254" });
  var prechat = el("form", { class: "prechat", hidden: true }, [
    el("label", { for: "patra-name", text: T.name }), nameInput,
    el("label", { for: "patra-email", text: T.email }), emailInput,
    el("button", { type: "submit", class: "start", text: T.start })
  ]);

  var textarea = el("textarea", {
    id: "patra-text", name: "text", rows: "1", dir: "auto", placeholder: T.placeholder
  });
  var fileInput = el("input", { type: "file", class: "file", name: "file" });
  var composer = el("form", { class: "composer" }, [
    el("label", { for: "patra-text", class: "sr", text: T.message }), textarea,
    el("label", { class: "attach", title: T.attach }, [
      clip(),
      el("span", { class: "sr", text: T.attach }), fileInput
    ]),
    el("button", { type: "submit", class: "send", text: T.send })
  ]);

  var panel = el("section", {
    id: "patra-panel", class: "panel", role: "dialog", "aria-label": T.title, hidden: true
  }, [
    el("header", { class: "head" }, [el("h2", { text: T.title }), closeButton]),
    log, status, prechat, composer
  ]);
  root.appendChild(launcher);
  root.appendChild(panel);
  applyStyles(root, "");

  function needsPrechat() { return config && config.prechat && !token; }

  function showForms() {
    prechat.hidden = !needsPrechat();
    composer.hidden = !prechat.hidden;
    emailInput.required = !!(config && config.require_email);
  }

  function setOpen(open) {
    isOpen = open;
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      unread = 0;
      updateBadge();
      showForms();
      (prechat.hidden ? textarea : nameInput).focus();
      log.scrollTop = log.scrollHeight;
    } else {
      launcher.focus();
    }
  }

  function updateBadge() {
    badge.hidden = unread === 0;
    badge.textContent = String(unread);
    launcher.setAttribute("aria-label", unread ? T.open + " (" + unread + " " + T.unread + ")" : T.open);
  }

  // --- messages ------------------------------------------------------------

  function attachmentLink(attachment) {
    var href = source.origin + found[1] + attachment.url + "?token=" + encodeURIComponent(token);
    return el("a", { href: href, download: attachment.filename, rel: "noopener", dir: "auto", text: attachment.filename });
  }

  function bubble(message) {
    var item = el("li", { class: "msg " + message.from, "data-id": message.id });
    if (message.from === "agent" && message.sender) {
      item.appendChild(el("span", { class: "who", dir: "auto", text: message.sender }));
    }
    if (message.text) item.appendChild(el("p", { dir: "auto", text: message.text }));
    (message.attachments || []).forEach(function (attachment) {
      item.appendChild(el("p", { dir: "auto" }, [attachmentLink(attachment)]));
    });
    return item;
  }

  // Shows a message once, in id order; true when it was new.
  function show(message) {
    if (seen[message.id]) return false;
    seen[message.id] = true;
    var item = bubble(message);
    var after = null;
    Array.prototype.some.call(log.children, function (child) {
      var id = Number(child.getAttribute("data-id"));
      if ((id && id > message.id) || child.classList.contains("pending")) {
        after = child;
        return true;
      }
      return false;
    });
    log.insertBefore(item, after);
    log.scrollTop = log.scrollHeight;
    return true;
  }

  async function catchUp() {
    if (!token) return;
    var since = cursor;
    var hold = Infinity;
    var page;
    do {
      var response = await call("/messages?since=" + since);
      if (response.status === 401) return forget();
      if (!response.ok) return;
      page = await response.json();
      page.messages.forEach(show);
      var last = page.messages.length ? page.messages[page.messages.length - 1].id : since;
      if (page.cursor < last) hold = Math.min(hold, page.cursor);
      since = last;
    } while (page.more);
    cursor = Math.min(hold, page.cursor);
  }

  function forget() {
    token = "";
    cursor = 0;
    save();
    if (events) { events.close(); events = null; }
    status.textContent = T.expired;
    showForms();
  }

  function listen() {
    if (!token || events) return;
    events = new EventSource(API + "/stream?token=" + encodeURIComponent(token));
    events.addEventListener("message", function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (error) { return; }
      if (show(message) && message.from === "agent" && !isOpen) {
        unread += 1;
        updateBadge();
      }
    });
    events.addEventListener("open", function () {
      reconnectDelay = 1000;
      status.textContent = "";
      catchUp();
    });
    events.addEventListener("error", function () {
      if (events && events.readyState === EventSource.CLOSED) {
        events.close();
        events = null;
        setTimeout(function () { catchUp().then(listen, listen); }, reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, 30000);
      }
    });
  }

  async function startSession(name, email) {
    var response = await call("/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: name || "", email: email || "" })
    });
    if (!response.ok) throw new Error(await errorText(response));
    token = (await response.json()).token;
    save();
    listen();
  }

  function request(item) {
    if (item.file) {
      var form = new FormData();
      form.append("file", item.file);
      form.append("idempotency_key", item.key);
      form.append("page_url", location.href);
      return call("/uploads", { method: "POST", body: form });
    }
    return call("/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: item.text, idempotency_key: item.key, page_url: location.href })
    });
  }

  // Sends one message, retrying with the same key so it is stored only once.
  async function deliver(item) {
    item.node.className = "msg visitor pending";
    item.node.lastChild.textContent = item.file ? item.file.name : item.text;
    var failure = T.failed;
    for (var attempt = 0; attempt < RETRIES; attempt++) {
      var response = null;
      try {
        if (!token) await startSession();
        response = await request(item);
      } catch (error) {
        failure = error.message && !/fetch|network/i.test(error.message) ? error.message : T.offline;
      }
      if (response && response.ok) {
        var body = await response.json();
        item.node.remove();
        if (body.message) show(body.message);
        status.textContent = "";
        return;
      }
      if (response && response.status === 401) {
        forget();
        if (needsPrechat()) break;
        continue;
      }
      if (response) failure = await errorText(response);
      // Refused (bad type, too large...): sending it again cannot help.
      if (response && response.status !== 429 && response.status < 500) {
        item.node.className = "msg visitor failed";
        item.node.appendChild(el("p", { class: "why", dir: "auto", text: failure }));
        status.textContent = failure;
        return;
      }
      var wait = 1000 * Math.pow(2, attempt);
      if (response && response.headers.get("Retry-After")) {
        wait = 1000 * Number(response.headers.get("Retry-After")) || wait;
      }
      if (!response) status.textContent = T.offline;
      await sleep(wait);
    }
    item.node.className = "msg visitor failed";
    status.textContent = failure;
    var again = el("button", { type: "button", text: T.retry });
    again.addEventListener("click", function () { again.remove(); deliver(item); });
    item.node.appendChild(again);
  }

  function queue(text, file) {
    var item = { key: newKey(), text: text, file: file };
    item.node = el("li", { class: "msg visitor pending" }, [el("p", { dir: "auto" })]);
    log.appendChild(item.node);
    log.scrollTop = log.scrollHeight;
    deliver(item);
  }

  // --- events --------------------------------------------------------------

  launcher.addEventListener("click", function () { setOpen(true); });
  closeButton.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") setOpen(false);
  });
  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = textarea.value.trim();
    if (!text) return;
    textarea.value = "";
    queue(text, null);
  });
  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  fileInput.addEventListener("change", function () {
    Array.prototype.forEach.call(fileInput.files, function (file) { queue("", file); });
    fileInput.value = "";
  });
  prechat.addEventListener("submit", async function (event) {
    event.preventDefault();
    try {
      await startSession(nameInput.value.trim(), emailInput.value.trim());
      status.textContent = "";
      showForms();
      textarea.focus();
    } catch (error) {
      status.textContent = error.message;
    }
  });

  function mount() {
    document.body.appendChild(host);
    call("/config").then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (body) {
      if (!body) return;
      config = body;
      applyStyles(root, config.color);
      greeting.firstChild.textContent = config.greeting;
      greeting.hidden = !config.greeting;
      showForms();
    }, function () { /* offline: the launcher still opens, sending will retry */ });
    if (token) catchUp().then(listen, listen);
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
