// The web client: ask a research question or rewrite prose, over SSE or WebSocket.

import { apiError, authHeaders, sseStream, wsStream } from "./transport.js";
import { WorkflowView } from "./workflow.js";

const config = JSON.parse(document.getElementById("client-config").textContent);
const $ = (id) => document.getElementById(id);

const ACCEPT_MESSAGE = "Great, start the research.";
const RECORD_RETRIES = 20;

let current = null; // The stream that runs, if any: { stop, done }.

// --- The session bar ------------------------------------------------------------------

function token() {
  return config.tokenRequired ? $("api-token").value.trim() : "";
}

// STREAM_AUTH=users: a page whose sign-in lapsed goes back to the sign-in page.
function signInAgain(response) {
  if (config.auth !== "users" || response.status !== 401) return false;
  location.assign(`${config.loginUrl}?next=${encodeURIComponent(location.pathname)}`);
  return true;
}

function setStatus(status, reason) {
  const badge = $("session-status");
  badge.textContent = status.replaceAll("_", " ");
  badge.dataset.status = status;
  $("session-reason").textContent = reason ? config.endReasons[reason] || reason : "–";
}

function showSession(id) {
  $("session-id").textContent = id;
  const link = $("admin-link");
  if (config.adminSessionUrl) {
    link.href = config.adminSessionUrl.replace(config.idPlaceholder, id);
    link.hidden = false;
  }
}

function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = !text;
}

function setBusy(busy) {
  $("stop").disabled = !busy;
  $("share").disabled = !busy;
  for (const id of ["ask", "generate", "send-feedback"]) $(id).disabled = busy;
  for (const button of $("interrupt-options").querySelectorAll("button")) button.disabled = busy;
  for (const radio of document.querySelectorAll("input[name=transport]")) radio.disabled = busy;
  document.body.classList.toggle("busy", busy);
}

// The server's record of how the stream ended: the same row the admin shows.
async function showRecord(result) {
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  for (let attempt = 0; attempt < RECORD_RETRIES; attempt += 1) {
    try {
      const response = await fetch(`/api/sessions/${result.sessionId}`, { headers });
      if (!response.ok) throw new Error(await apiError(response));
      const record = await response.json();
      if (record.status !== "running" && record.status !== "queued") {
        setStatus(record.status, record.end_reason);
        return;
      }
    } catch {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  setStatus(result.status || "ended", result.reason);
}

// Run one stream of `kind` ("chat" or "prose"); `onEvent(name, data)` renders its events,
// `onEnd()` tidies up once it is over.
async function run(kind, request, onEvent, onEnd = () => {}) {
  if (current) return;
  const transport = document.querySelector("input[name=transport]:checked").value;
  notice("");
  $("session-id").textContent = "…";
  $("session-transport").textContent = transport === "sse" ? "SSE" : "WebSocket";
  $("admin-link").hidden = true;
  $("observer").hidden = true;
  setStatus("connecting");
  setBusy(true);
  const open = transport === "sse" ? sseStream : wsStream;
  current = open({
    kind,
    request,
    token: token(),
    csrfToken: config.csrfToken,
    handlers: {
      session(id) {
        showSession(id);
        setStatus("streaming");
      },
      event: onEvent,
      notice,
    },
  });
  try {
    const result = await current.done;
    await showRecord(result);
  } catch (error) {
    if (signInAgain(error)) return;
    setStatus("error");
    notice(error.message);
  } finally {
    current = null;
    onEnd();
    setBusy(false);
  }
}

$("stop").addEventListener("click", () => {
  if (!current) return;
  $("stop").disabled = true;
  setStatus("stopping");
  current.stop();
});

// --- Tabs and transport -----------------------------------------------------------------

for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll("[role=tab]")) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
  });
}

// A link anyone can follow (read only, until it expires) to the running stream.
$("share").addEventListener("click", async () => {
  const id = $("session-id").textContent;
  const response = await fetch(`/api/sessions/${id}/observer-link`, {
    method: "POST",
    headers: authHeaders(token(), config.csrfToken),
  });
  if (signInAgain(response)) return;
  if (!response.ok) {
    notice(await apiError(response));
    return;
  }
  const link = await response.json();
  $("observer-url").value = link.url;
  $("observer").hidden = false;
  const until = new Date(link.expires_at).toLocaleTimeString();
  try {
    await navigator.clipboard.writeText(link.url);
    notice(`Observer link copied; it works until ${until}.`);
  } catch {
    $("observer-url").select();
    notice(`Copy the observer link beside the session; it works until ${until}.`);
  }
});

if (config.user) {
  $("who-name").textContent = config.user;
  $("who").hidden = false;
}

$("token-field").hidden = !config.tokenRequired;
$("token-field").addEventListener("submit", (event) => event.preventDefault());

// --- Research (the chat workflow) -------------------------------------------------------

const workflow = new WorkflowView($("workflow"), { onInterrupt: showInterrupt });

function chatRequest(text, extra) {
  return {
    messages: [{ role: "user", content: text }],
    thread_id: "__default__",
    max_step_num: Number($("max-steps").value) || 3,
    report_style: $("report-style").value,
    auto_accepted_plan: $("auto-accept").checked,
    enable_deep_thinking: $("deep-thinking").checked,
    ...extra,
  };
}

function runChat(request) {
  run(
    "chat",
    request,
    (name, data) => workflow.handle(name, data),
    () => workflow.settle(),
  );
}

function showInterrupt(data) {
  $("interrupt-text").textContent = data.content || "Please review the plan.";
  const options = $("interrupt-options");
  options.replaceChildren();
  for (const option of data.options || []) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = option.text;
    button.dataset.value = option.value;
    button.className = option.value === "accepted" ? "primary" : "";
    button.disabled = Boolean(current);
    button.addEventListener("click", () => answerInterrupt(option));
    options.append(button);
  }
  $("edit-plan-form").hidden = true;
  $("interrupt").hidden = false;
}

function hideInterrupt() {
  $("interrupt").hidden = true;
  $("edit-plan-form").hidden = true;
}

function followUp(text, feedback) {
  hideInterrupt();
  workflow.addUserTurn(text);
  const request = chatRequest(text, { thread_id: workflow.threadId, interrupt_feedback: feedback });
  runChat(request);
}

function answerInterrupt(option) {
  if (option.value === "edit_plan") {
    $("edit-plan-form").hidden = false;
    $("plan-feedback").focus();
    return;
  }
  followUp(option.value === "accepted" ? ACCEPT_MESSAGE : option.text, option.value);
}

$("edit-plan-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const feedback = $("plan-feedback").value.trim();
  if (!feedback) return;
  $("plan-feedback").value = "";
  followUp(feedback, "edit_plan");
});

$("ask-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question || current) return;
  hideInterrupt();
  workflow.clear();
  workflow.addUserTurn(question);
  runChat(chatRequest(question));
});

$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("ask-form").requestSubmit();
  }
});

// --- Prose --------------------------------------------------------------------------------

$("prose-option").addEventListener("change", () => {
  $("prose-command-field").hidden = $("prose-option").value !== "zap";
});

$("prose-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (current) return;
  const output = $("prose-output");
  output.replaceChildren();
  const text = document.createElement("div");
  text.className = "prose-text";
  output.append(text);
  const request = {
    prompt: $("prose-text").value,
    option: $("prose-option").value,
    command: $("prose-command").value,
  };
  run("prose", request, (name, data) => {
    if (name === "error") {
      const end = document.createElement("p");
      end.className = `stream-end reason-${data.reason}`;
      end.textContent = `Stream ended: ${data.error}`;
      output.append(end);
    } else {
      text.textContent += data;
    }
  });
});
