// Render deer-flow's chat stream by agent: the coordinator's hand-off, the planner's plan,
// the research steps with their tool calls and results, and the reporter's report.
//
// Stream content only ever reaches the page as textContent, or through renderMarkdown,
// which escapes it first.

import { renderMarkdown } from "./markdown.js";

const AGENT_TITLES = {
  coordinator: "Coordinator",
  planner: "Planner",
  researcher: "Researcher",
  coder: "Coder",
  reporter: "Reporter",
  analyst: "Analyst",
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

export class WorkflowView {
  constructor(root, { onInterrupt }) {
    this.root = root;
    this.onInterrupt = onInterrupt;
    this.messages = new Map();
    this.toolCalls = new Map();
    this.threadId = null;
    this.pendingRender = new Set();
  }

  clear() {
    this.root.replaceChildren();
    this.messages.clear();
    this.toolCalls.clear();
    this.threadId = null;
  }

  // The stream is over: messages it left unfinished (a cancel, a timeout) stop "writing".
  settle() {
    for (const message of this.messages.values()) {
      if (!message.node.classList.contains("streaming")) continue;
      if (message.content) this.renderContent(message);
      message.node.classList.replace("streaming", "unfinished");
    }
    this.pendingRender.clear();
  }

  // A user's turn: the question, or the answer at the plan's review.
  addUserTurn(text) {
    const turn = el("article", "msg msg-user");
    turn.append(el("header", "agent", "You"), el("p", "text", text));
    this.root.append(turn);
    turn.scrollIntoView({ block: "nearest" });
  }

  handle(name, data) {
    if (data && data.thread_id) this.threadId = data.thread_id;
    if (name === "interrupt") {
      this.onInterrupt(data);
    } else if (name === "tool_call_result") {
      this.toolResult(data);
    } else if (name === "error") {
      const notice = el("p", `stream-end reason-${data.reason}`, `Stream ended: ${data.error}`);
      this.root.append(notice);
    } else if (name === "message_chunk" || name === "tool_calls" || name === "tool_call_chunks") {
      this.chunk(name, data);
    }
  }

  message(data) {
    let message = this.messages.get(data.id);
    if (message) return message;
    const agent = data.agent || "assistant";
    const node = el("article", `msg agent-${agent} streaming`);
    node.dataset.agent = agent;
    node.dataset.messageId = data.id;
    const header = el("header", "agent", AGENT_TITLES[agent] || agent);
    const body = el("div", "body");
    node.append(header, body);
    this.root.append(node);
    message = { agent, node, body, content: "", reasoning: "", thinking: null, text: null, calls: [] };
    this.messages.set(data.id, message);
    return message;
  }

  chunk(name, data) {
    const message = this.message(data);
    if (data.reasoning_content) {
      if (!message.thinking) {
        const details = el("details", "thinking");
        details.append(el("summary", "", "Thinking"), el("p", "thinking-text"));
        message.body.prepend(details);
        message.thinking = details.lastChild;
      }
      message.reasoning += data.reasoning_content;
      message.thinking.textContent = message.reasoning;
    }
    if (data.content) {
      message.content += data.content;
      this.scheduleRender(message);
    }
    if (name === "tool_calls") {
      for (const call of data.tool_calls || []) this.addToolCall(message, call);
    }
    if (name === "tool_calls" || name === "tool_call_chunks") {
      for (const chunk of data.tool_call_chunks || []) {
        const call = message.calls[chunk.index ?? 0];
        if (call && typeof chunk.args === "string") call.argsText += chunk.args;
      }
    }
    if (data.finish_reason) this.finish(message, data.finish_reason);
  }

  scheduleRender(message) {
    if (this.pendingRender.has(message)) return;
    this.pendingRender.add(message);
    requestAnimationFrame(() => {
      // A message that finished meanwhile was rendered then, and may be a plan card now.
      if (this.pendingRender.delete(message)) this.renderContent(message);
    });
  }

  renderContent(message) {
    if (!message.text) {
      const tag = message.agent === "planner" ? "pre" : "div";
      message.text = el(tag, message.agent === "planner" ? "plan-raw" : "text markdown");
      message.body.append(message.text);
    }
    if (message.agent === "planner") message.text.textContent = message.content;
    else message.text.innerHTML = renderMarkdown(message.content);
  }

  finish(message, reason) {
    this.pendingRender.delete(message);
    if (message.content) this.renderContent(message);
    message.node.classList.remove("streaming");
    message.node.dataset.finish = reason;
    if (message.agent === "planner" && message.content) this.showPlan(message);
    for (const call of message.calls) this.showArgs(call);
  }

  showPlan(message) {
    let plan;
    try {
      plan = JSON.parse(message.content);
    } catch {
      return; // Not JSON after all: the raw text stays.
    }
    const card = el("div", "plan");
    card.append(el("h3", "plan-title", plan.title || "Plan"));
    if (plan.thought) card.append(el("p", "plan-thought", plan.thought));
    const steps = el("ol", "plan-steps");
    for (const step of plan.steps || []) {
      const item = el("li");
      item.append(el("strong", "", step.title || ""));
      if (step.step_type) item.append(" ", el("span", "badge", step.step_type));
      if (step.description) item.append(el("p", "", step.description));
      steps.append(item);
    }
    card.append(steps);
    message.text.replaceWith(card);
    message.text = card;
  }

  addToolCall(message, call) {
    const node = el("div", "tool");
    node.dataset.tool = call.name;
    const head = el("div", "tool-head");
    head.append(el("span", "tool-name", call.name), el("span", "tool-args"));
    node.append(head);
    message.body.append(node);
    const entry = { name: call.name, args: call.args || {}, argsText: "", node };
    message.calls.push(entry);
    this.toolCalls.set(call.id, entry);
    this.showArgs(entry);
  }

  showArgs(call) {
    let args = call.args;
    if ((!args || !Object.keys(args).length) && call.argsText) {
      try {
        args = JSON.parse(call.argsText);
      } catch {
        args = {};
      }
    }
    const summary =
      args.query ?? args.url ?? args.keywords ?? args.research_topic ?? args.code ?? JSON.stringify(args);
    const target = call.node.querySelector(".tool-args");
    target.textContent = summary || "";
    target.classList.toggle("code", typeof args.code === "string");
  }

  toolResult(data) {
    const call = this.toolCalls.get(data.tool_call_id);
    const container = el("div", "tool-result");
    (call ? call.node : this.message(data).body).append(container);
    const pages = call && call.name === "web_search" ? parsePages(data.content) : null;
    if (pages) {
      const list = el("ul", "pages");
      for (const page of pages) {
        const item = el("li");
        const url = safeUrl(page.url);
        const link = el(url ? "a" : "span", "page-title", page.title || page.url || "");
        if (url) {
          link.href = url;
          link.target = "_blank";
          link.rel = "noopener noreferrer";
        }
        item.append(link);
        if (page.content) item.append(el("p", "page-snippet", page.content));
        list.append(item);
      }
      container.append(list);
    } else {
      const output = el("div", "tool-output markdown");
      output.innerHTML = renderMarkdown(data.content || "");
      container.append(output);
    }
  }
}

function parsePages(content) {
  try {
    const pages = JSON.parse(content);
    return Array.isArray(pages) ? pages.filter((page) => page && typeof page === "object") : null;
  } catch {
    return null;
  }
}
