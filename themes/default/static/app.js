/* Patra agent inbox: live updates over Server-Sent Events, small conveniences.
 *
 * One EventSource to /events while an inbox page is open ([data-live]). On an
 * event the affected parts refresh through htmx: the conversation list
 * (hx-trigger "patra:refresh-list from:body"), the open conversation's header
 * and contact panel ("patra:refresh-conversation from:body"); new messages are
 * appended to the open conversation, changed ones re-rendered in place.
 * No inline scripts anywhere: the page's CSP allows only this file and htmx.
 */
(function () {
  "use strict";

  var source = null;
  var retryDelay = 1000;
  var retryTimer = null;
  var listTimer = null;
  var loadingMessages = false;
  var loadAgain = false;
  var staleMessages = {};

  function liveRoot() {
    return document.querySelector("[data-live]");
  }

  function openConversationId() {
    var root = liveRoot();
    return root && root.dataset.conversationId ? Number(root.dataset.conversationId) : null;
  }

  function refreshList() {
    // Several events in a burst cause one refresh.
    clearTimeout(listTimer);
    listTimer = setTimeout(function () {
      htmx.trigger(document.body, "patra:refresh-list");
    }, 150);
  }

  function refreshConversation() {
    htmx.trigger(document.body, "patra:refresh-conversation");
  }

  function lastMessageId(list) {
    var last = 0;
    list.querySelectorAll("[data-message-id]").forEach(function (item) {
      last = Math.max(last, Number(item.dataset.messageId));
    });
    return last;
  }

  function nearBottom(element) {
    return element.scrollHeight - element.scrollTop - element.clientHeight < 120;
  }

  function scrollToBottom(element) {
    element.scrollTop = element.scrollHeight;
    if (element.scrollHeight <= element.clientHeight) {
      var last = element.lastElementChild;
      if (last && last.scrollIntoView && window.innerWidth < 900) {
        last.scrollIntoView({ block: "end" });
      }
    }
  }

  /* Append messages newer than the last one shown; one request at a time,
   * and never the same message twice (the SSE event and our own send race). */
  function loadNewMessages() {
    var list = document.getElementById("messages");
    if (!list) return;
    if (loadingMessages) {
      loadAgain = true;
      return;
    }
    loadingMessages = true;
    var url = list.dataset.messagesUrl + "?after=" + lastMessageId(list);
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : "";
      })
      .then(function (html) {
        if (!html.trim() || !document.body.contains(list)) return;
        var stick = nearBottom(list);
        var holder = document.createElement("template");
        holder.innerHTML = html;
        Array.prototype.slice.call(holder.content.children).forEach(function (item) {
          if (item.id && document.getElementById(item.id)) return;
          list.appendChild(item);
          htmx.process(item);
          var messageId = item.dataset && item.dataset.messageId;
          if (messageId && staleMessages[messageId]) {
            delete staleMessages[messageId];
            refreshMessage(messageId);
          }
        });
        if (stick) scrollToBottom(list);
      })
      .catch(function () {})
      .finally(function () {
        loadingMessages = false;
        if (loadAgain) {
          loadAgain = false;
          loadNewMessages();
        }
      });
  }

  function refreshMessage(messageId) {
    var item = document.getElementById("message-" + messageId);
    if (!item) {
      // The update beat the message itself (a fast delivery): refresh the
      // message once it has been added, or it would keep its old status.
      staleMessages[messageId] = true;
      return;
    }
    htmx.ajax("GET", "/inbox/messages/" + messageId, { target: item, swap: "outerHTML" });
  }

  function handle(event) {
    var data;
    try {
      data = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    var current = openConversationId();
    var here = current !== null && data.conversation_id === current;
    refreshList();
    if (!here) return;
    if (data.type === "message.created") {
      loadNewMessages();
    } else if (data.type === "message.updated") {
      refreshMessage(data.message_id);
    } else if (data.type === "conversation.updated") {
      refreshConversation();
      loadNewMessages(); // the activity line the change wrote
    }
  }

  function catchUp() {
    refreshList();
    if (openConversationId() !== null) {
      refreshConversation();
      loadNewMessages();
    }
  }

  function connect() {
    if (source || !liveRoot() || !window.EventSource) return;
    source = new EventSource("/events");
    var types = ["message.created", "message.updated", "conversation.created",
                 "conversation.updated", "inbox.changed"];
    types.forEach(function (type) {
      source.addEventListener(type, handle);
    });
    source.addEventListener("open", function () {
      if (retryDelay > 1000) catchUp(); // a reconnect: fetch what we missed
      retryDelay = 1000;
      document.documentElement.classList.remove("is-offline");
    });
    source.addEventListener("error", function () {
      document.documentElement.classList.add("is-offline");
      if (source.readyState === EventSource.CLOSED) {
        // Refused (a restart, or the session ended): a list refresh either
        // works or, logged out, makes htmx follow HX-Redirect to the login page.
        refreshList();
        source = null;
        clearTimeout(retryTimer);
        retryTimer = setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        retryDelay = Math.max(retryDelay, 2000);
      }
    });
  }

  function disconnectIfIdle() {
    if (source && !liveRoot()) {
      source.close();
      source = null;
    }
  }

  /* Page conveniences, bound once on the document. */
  function onChange(event) {
    var target = event.target;
    if (target.matches("select[data-autosubmit]") && target.form) {
      target.form.requestSubmit();
    }
    if (target.matches("[data-file-input]")) {
      var names = Array.prototype.map.call(target.files, function (file) {
        return file.name;
      });
      var label = target.form.querySelector("[data-file-names]");
      if (label) label.textContent = names.join(", ");
    }
  }

  function onKeydown(event) {
    var target = event.target;
    if (target.id === "composer-text" && event.key === "Enter" &&
        (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      target.form.requestSubmit();
    }
  }

  function onClick(event) {
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) dismiss.closest(".flash").remove();
  }

  function prepare(root) {
    root.querySelectorAll("[data-tz-offset]").forEach(function (input) {
      input.value = String(new Date().getTimezoneOffset());
    });
    var list = root.querySelector ? root.querySelector("#messages") : null;
    if (list) scrollToBottom(list);
    connect();
    disconnectIfIdle();
  }

  document.addEventListener("change", onChange);
  document.addEventListener("keydown", onKeydown);
  document.addEventListener("click", onClick);
  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    prepare(document);
    document.body.addEventListener("patra:messages", loadNewMessages);
    document.body.addEventListener("patra:conversation", function () {
      refreshConversation();
      refreshList();
      loadNewMessages();
    });
    document.body.addEventListener("htmx:load", function (event) {
      prepare(event.detail.elt);
    });
    document.body.addEventListener("htmx:afterRequest", function (event) {
      // A successful action clears an old error.
      if (event.detail.successful && event.detail.requestConfig &&
          event.detail.requestConfig.verb !== "get") {
        var flash = document.getElementById("flash");
        if (flash) flash.innerHTML = "";
      }
    });
  });
})();
