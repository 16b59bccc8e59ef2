// The two ways to run a stream: SSE (fetch POST + stream reader) and WebSocket.
//
// Both call the same handlers: session(id), event(name, data, id), and resolve `done`
// once the stream is over. `stop()` asks the server to cancel (contract §2 and §5).

const PATHS = { chat: "/api/chat/stream", prose: "/api/prose/generate" };

// What a request of this page carries to be let in: the shared token (STREAM_AUTH=token),
// or, signed in (STREAM_AUTH=users), Django's CSRF token beside the session cookie.
export function authHeaders(token, csrfToken = "") {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  if (csrfToken) headers["X-CSRFToken"] = csrfToken;
  return headers;
}

// Split a stream body into frames on a blank line and read `id`, `event` and `data`
// lines as the SSE standard does: several `data:` lines join with "\n"; comments drop.
export class SseParser {
  constructor(onFrame) {
    this.buffer = "";
    this.onFrame = onFrame;
  }

  push(text) {
    this.buffer += text.replace(/\r\n?/g, "\n");
    let end;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      this.parseBlock(block);
    }
  }

  parseBlock(block) {
    let id = null;
    let event = "";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") id = value;
      else if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) this.onFrame({ id, event: event || "message", data: data.join("\n") });
  }
}

export async function apiError(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    return `HTTP ${response.status}`;
  }
}

// Run a stream over SSE. Stop = POST /api/sessions/<id>/cancel; if that cannot reach the
// stream, hang up instead (the server then records a client disconnect).
export function sseStream({ kind, request, token, csrfToken, handlers }) {
  const abort = new AbortController();
  let sessionId = null;
  const done = (async () => {
    const response = await fetch(PATHS[kind], {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders(token, csrfToken) },
      body: JSON.stringify(request),
      signal: abort.signal,
    });
    if (!response.ok) throw Object.assign(new Error(await apiError(response)), { status: response.status });
    sessionId = response.headers.get("X-Stream-Session-Id");
    handlers.session(sessionId);
    const parser = new SseParser((frame) => {
      const data = kind === "prose" && frame.event === "message" ? frame.data : JSON.parse(frame.data);
      handlers.event(frame.event, data, frame.id);
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) break;
        parser.push(value);
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    }
    return { sessionId };
  })();

  async function stop() {
    if (!sessionId) {
      abort.abort();
      return;
    }
    try {
      const response = await fetch(`/api/sessions/${sessionId}/cancel`, {
        method: "POST",
        headers: authHeaders(token, csrfToken),
      });
      if (response.status === 202 || response.status === 409) return;
    } catch {
      // Fall through: hang up.
    }
    abort.abort();
  }

  return { done, stop };
}

// Run a stream over a WebSocket of its own. Stop = {"type":"cancel"}.
export function wsStream({ kind, request, token, handlers }) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/stream/${query}`);
  let sessionId = null;
  const done = new Promise((resolve, reject) => {
    let ended = null;
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: `${kind}.start`, request }));
    });
    socket.addEventListener("message", (message) => {
      const msg = JSON.parse(message.data);
      if (msg.type === "session") {
        sessionId = msg.session_id;
        handlers.session(sessionId);
      } else if (msg.type === "event") {
        const data = kind === "prose" && !msg.event ? msg.data.text : msg.data;
        handlers.event(msg.event || "message", data, String(msg.id));
      } else if (msg.type === "end") {
        ended = { sessionId, status: msg.status, reason: msg.reason };
        socket.close(1000);
      } else if (msg.type === "error") {
        if (!sessionId) {
          ended = new Error(typeof msg.detail === "string" ? msg.detail : JSON.stringify(msg.detail));
          socket.close(1000);
        } else {
          handlers.notice(String(msg.detail));
        }
      }
    });
    socket.addEventListener("close", (event) => {
      if (ended instanceof Error) reject(ended);
      else if (ended) resolve(ended);
      else if (sessionId) resolve({ sessionId });
      else reject(new Error(`The WebSocket closed (code ${event.code}).`));
    });
  });

  async function stop() {
    if (socket.readyState === WebSocket.OPEN && sessionId) {
      socket.send(JSON.stringify({ type: "cancel" }));
    } else {
      socket.close(1000);
    }
  }

  return { done, stop };
}
