// The conversation on screen: one list item per message of the active branch, with its
// status, usage, version switch (‹ 2 / 3 ›) and buttons. Text is only ever set as text.

const ROLES = { USER: "You", ASSISTANT: "Assistant", SYSTEM: "System" };
const STATUS = {
  STREAMING: "streaming",
  FAILED: "failed",
  CANCELLED: "cancelled",
  INTERRUPTED: "interrupted",
};
const number = new Intl.NumberFormat("en-US");

/** What an answer used: tokens, charge, cost and time, as one line ("" if unknown). */
export function usageLine(message, usage) {
  const counts = usage ?? message;
  if (counts.promptTokens == null || counts.completionTokens == null) return "";
  const parts = [
    `${number.format(counts.promptTokens)} prompt + ` +
      `${number.format(counts.completionTokens)} completion tokens`,
  ];
  if (counts.chargedTokens != null) parts.push(`${number.format(counts.chargedTokens)} charged`);
  if (usage?.costUsd != null) parts.push(usd(usage.costUsd));
  if (message.totalMs != null) parts.push(`${number.format(message.totalMs)} ms`);
  return parts.join(" · ");
}

// A Decimal scalar arrives as fixed-point text ("0.00023250"): shown as plain dollars,
// to the 8 places the gateway keeps, without trailing zeros.
function usd(text) {
  const value = Number(text);
  return Number.isFinite(value) ? `$${value.toFixed(8).replace(/\.?0+$/, "")}` : `$${text}`;
}

export class MessageList {
  /**
   * @param {HTMLOListElement} list where the messages go
   * @param {HTMLElement} empty shown while there are none
   * @param {{cancel, regenerate, switchTo}} actions called with a message id
   */
  constructor(list, empty, actions) {
    this.list = list;
    this.empty = empty;
    this.actions = actions;
    this.entries = new Map(); // id → {message, usage}
  }

  has(id) {
    return this.entries.has(id);
  }

  get(id) {
    return this.entries.get(id)?.message ?? null;
  }

  messages() {
    return [...this.entries.values()].map((entry) => entry.message);
  }

  /** Is any answer on screen still streaming? */
  streaming() {
    return this.messages().some((message) => message.status === "STREAMING");
  }

  /** Show exactly these (``{message, usage}`` each, oldest first). */
  render(entries) {
    // A keyboard user who pressed a button keeps their place: the same button (or the
    // first one) of the message at the same position gets the focus back.
    const focused = this.#focused();
    const index = focused ? [...this.list.children].indexOf(focused.item) : -1;
    this.entries.clear();
    this.list.replaceChildren();
    entries.forEach((entry) => this.put(entry));
    const item = this.list.children[index];
    if (item) refocus(item, focused.action);
    this.#settle();
  }

  /** Drop every message after ``id`` (all of them for null): a new branch starts there. */
  keepUpTo(id) {
    const ids = [...this.entries.keys()];
    const kept = id === null ? 0 : ids.indexOf(id) + 1;
    if (id !== null && kept === 0) return;
    ids.slice(kept).forEach((dropped) => {
      this.entries.delete(dropped);
      this.#item(dropped)?.remove();
    });
    this.#settle();
  }

  /** Add a message, or redraw it where it is. */
  put({ message, usage = null }) {
    const atBottom = this.#atBottom();
    const old = this.#item(message.id);
    const focused = this.#focused();
    const item = this.#draw(message, usage);
    if (old) old.replaceWith(item);
    else this.list.append(item);
    this.entries.set(message.id, { message, usage });
    if (focused && focused.item === old) refocus(item, focused.action);
    if (atBottom) this.#scrollDown();
    this.#settle();
  }

  /** The text of an answer as it streams (no redraw of the rest of it). */
  setText(id, text) {
    const entry = this.entries.get(id);
    if (!entry) return;
    const atBottom = this.#atBottom();
    entry.message = { ...entry.message, content: text };
    this.#item(id).querySelector(".pg-text").textContent = text;
    if (atBottom) this.#scrollDown();
  }

  #draw(message, usage) {
    const item = element("li", `pg-message pg-${message.role.toLowerCase()}`);
    item.id = `message-${message.id}`;
    const streaming = message.status === "STREAMING";
    // Screen readers wait for the whole answer instead of reading every delta.
    item.setAttribute("aria-busy", String(streaming));
    const head = element("div", "message-head");
    head.append(element("strong", "", ROLES[message.role] ?? message.role));
    if (STATUS[message.status]) {
      const kind = streaming ? "pg-status" : "pg-status off";
      head.append(element("span", `badge ${kind}`, STATUS[message.status]));
    }
    if (message.role === "ASSISTANT" && message.modelName) {
      head.append(element("span", "muted", message.modelName));
    }
    if (message.siblingIds.length > 1) head.append(this.#versions(message));
    item.append(head, element("div", "message pg-text", message.content));
    if (message.errorMessage && !streaming) {
      item.append(element("p", "pg-problem", message.errorMessage));
    }
    const used = message.role === "ASSISTANT" ? usageLine(message, usage) : "";
    if (used) item.append(element("p", "pg-usage muted", used));
    if (message.role === "ASSISTANT") {
      const buttons = element("div", "actions");
      if (streaming) buttons.append(this.#button("Cancel", "cancel", message.id));
      else buttons.append(this.#button("Regenerate", "regenerate", message.id));
      item.append(buttons);
    }
    return item;
  }

  // ‹ 2 / 3 ›: the other versions of this message (regenerated answers, edited questions).
  #versions(message) {
    const group = element("span", "pg-versions");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Versions");
    const position = message.siblingPosition;
    const count = message.siblingIds.length;
    const previous = this.#button("‹", "previous", message.siblingIds[position - 2]);
    previous.setAttribute("aria-label", "Previous version");
    previous.disabled = position <= 1;
    const next = this.#button("›", "next", message.siblingIds[position]);
    next.setAttribute("aria-label", "Next version");
    next.disabled = position >= count;
    group.append(previous, element("span", "", `${position} / ${count}`), next);
    return group;
  }

  #button(label, action, id) {
    const version = action === "previous" || action === "next";
    const button = element("button", version ? "link" : "secondary", label);
    button.type = "button";
    button.dataset.action = action;
    const handler = version ? this.actions.switchTo : this.actions[action];
    button.addEventListener("click", () => handler(id));
    return button;
  }

  // The message item holding the focused button, and that button's action.
  #focused() {
    const active = document.activeElement;
    const item = active?.closest?.(".pg-message");
    return item && this.list.contains(item) ? { item, action: active.dataset.action } : null;
  }

  #item(id) {
    return document.getElementById(`message-${id}`);
  }

  #settle() {
    this.empty.hidden = this.entries.size > 0;
  }

  #atBottom() {
    const list = this.list;
    return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  }

  #scrollDown() {
    this.list.scrollTop = this.list.scrollHeight;
  }
}

function refocus(item, action) {
  const same = item.querySelector(`[data-action="${action}"]:not(:disabled)`);
  (same ?? item.querySelector("button:not(:disabled)"))?.focus();
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
