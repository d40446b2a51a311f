// The playground page: pick a model (and an agent), start or pick a dialog, send, watch
// the answer stream, cancel or regenerate it, switch versions, follow the balance.
// Everything goes through the public GraphQL API over one graphql-transport-ws socket.

import { GraphQLSocket, socketUrl } from "./graphql_ws.js";
import { LiveAnswers } from "./live_answers.js";
import { MessageList } from "./message_list.js";
import { PlaygroundApi } from "./operations.js";
import {
  addDialog,
  els,
  fillSetup,
  hideErrors,
  pickModel,
  showBalance,
  showDialog,
  showErrors,
  showStatus,
} from "./page_controls.js";

const RECONNECT_FIRST_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
// An answer we started that has had no event for this long is read back: the
// subscription may have started after it ended (see MESSAGE_EVENTS in operations.js).
const QUIET_CHECK_MS = 3_000;

const state = {
  api: null,
  agents: new Map(), // id (string) → agent
  dialogs: new Map(), // id → dialog
  dialogId: null, // the open dialog; null: a new one is created by the first Send
  stopEvents: null,
  busy: 0,
  applied: 0, // bumped whenever an answer lands outside a list read (see reload)
  reloads: 0,
  pending: new Set(), // answers we started that have not ended yet
  lastEventAt: 0,
  reconnectMs: RECONNECT_FIRST_MS,
};
const answers = new LiveAnswers();
const view = new MessageList(els.messages, els.empty, {
  cancel: (id) => run(async () => finished(await state.api.cancel(id), null)),
  regenerate: (id) => run(async () => landed(await state.api.regenerate(id)), { reread: true }),
  switchTo: (id) =>
    run(async () => {
      await state.api.switchBranch(state.dialogId, id);
      await reload();
    }),
});

async function connect() {
  showStatus("Connecting…");
  const token = els.root.dataset.token;
  // A browser cannot put headers on a websocket: the token goes in connection_init.
  const socket = new GraphQLSocket(socketUrl(els.root.dataset.endpoint), {
    Authorization: `Bearer ${token}`,
  });
  let ack;
  try {
    ack = await socket.connect();
  } catch (closed) {
    disconnected(closed);
    return;
  }
  socket.onclose = disconnected;
  state.api = new PlaygroundApi(socket);
  state.reconnectMs = RECONNECT_FIRST_MS;
  showStatus(`Connected as user ${ack.userId}${ack.isStaff ? " (staff)" : ""}.`);
  state.api.balance(showBalance, showErrors);
  await run(async () => {
    const setup = await state.api.setup();
    state.agents = new Map(setup.agents.map((agent) => [String(agent.id), agent]));
    state.dialogs = new Map(setup.dialogs.map((dialog) => [dialog.id, dialog]));
    fillSetup(setup, state.dialogId);
    if (state.dialogId) await openDialog(state.dialogId); // reconnected: catch up
  });
}

function disconnected(closed) {
  state.api = null;
  state.stopEvents = null;
  updateControls();
  if (closed.code === 4403) {
    showStatus(`${closed.message} Reload the page, or sign in again if your session has ended.`);
    return;
  }
  const delay = state.reconnectMs;
  state.reconnectMs = Math.min(delay * 2, RECONNECT_MAX_MS);
  showStatus(`${closed.message} Reconnecting in ${Math.round(delay / 1000)} s…`);
  setTimeout(connect, delay);
}

/** Open a dialog: follow its events first, then read its active branch. */
async function openDialog(id) {
  state.stopEvents?.();
  state.dialogId = id;
  state.pending.clear();
  const dialog = state.dialogs.get(id);
  if (dialog) showDialog(dialog);
  answers.resubscribed();
  state.stopEvents = state.api.messageEvents(id, onEvent, showErrors);
  await reload();
}

function newDialog() {
  state.stopEvents?.();
  state.stopEvents = null;
  state.dialogId = null;
  state.pending.clear();
  els.dialog.value = "";
  view.render([]);
  updateControls();
  els.input.focus();
}

/** Read the open dialog's active branch again and show it. */
async function reload() {
  const dialogId = state.dialogId;
  if (!dialogId || !state.api) return;
  const ticket = ++state.reloads;
  const applied = state.applied;
  const messages = await state.api.messages(dialogId);
  if (ticket !== state.reloads || dialogId !== state.dialogId) return; // overtaken
  if (applied !== state.applied) {
    await reload(); // an answer landed while we read: this list may not have it yet
    return;
  }
  view.render(messages.map((message) => answers.current(message)));
  for (const message of view.messages()) {
    if (message.status !== "STREAMING") state.pending.delete(message.id);
  }
  updateControls();
}

async function send(event) {
  event.preventDefault();
  const content = els.input.value.trim();
  if (!content || els.send.disabled) return;
  await run(
    async () => {
      if (!state.dialogId) {
        const agent = els.agent.value;
        const dialog = await state.api.createDialog({
          model: els.model.value || null,
          agentId: agent ? Number(agent) : null,
          // The server would title it after the first message, too late for the picker.
          title: content.split("\n")[0].slice(0, 60),
        });
        state.dialogs.set(dialog.id, dialog);
        addDialog(dialog);
        await openDialog(dialog.id);
      }
      // Another model than the dialog's answers this message only.
      const model = els.model.value;
      const usual = state.dialogs.get(state.dialogId)?.model.name;
      const input = { dialogId: state.dialogId, content, model: model !== usual ? model : null };
      landed(await state.api.send(input));
      els.input.value = "";
      els.input.focus();
    },
    { reread: true },
  );
}

/** A send or regenerate returned: the question and its new answer end the branch. */
function landed({ userMessage, assistantMessage }) {
  state.applied += 1;
  view.keepUpTo(userMessage.parentId);
  view.put(answers.current(userMessage));
  view.put(answers.current(assistantMessage));
  if (view.get(assistantMessage.id).status === "STREAMING") {
    state.pending.add(assistantMessage.id);
    state.lastEventAt = performance.now();
  }
}

function onEvent(event) {
  state.lastEventAt = performance.now();
  switch (event.__typename) {
    case "MessageStarted":
      if (view.has(event.message.id)) view.put(answers.current(event.message));
      break;
    case "MessageDelta":
      view.setText(event.messageId, answers.delta(event));
      break;
    case "MessageCompleted":
      finished(event.message, event.usage);
      showBalance(event.balance);
      break;
    case "MessageFailed": {
      // ``final`` is the stored answer (cancelled, failed: with any partial text).
      const shown = view.get(event.messageId);
      const failed = shown && { ...shown, status: "FAILED", errorMessage: event.errorMessage };
      const final = event.final ?? failed;
      if (final) finished(final, null);
      break;
    }
  }
  // An answer of this dialog that we did not start (another tab) shows when it is reopened.
}

function finished(message, usage) {
  answers.end(message, usage);
  state.pending.delete(message.id);
  state.applied += 1;
  if (view.has(message.id)) view.put(answers.current(message));
  updateControls();
}

/** Run a user action: one at a time, its errors shown; ``reread`` after a failed send. */
async function run(action, { reread = false } = {}) {
  if (!state.api) {
    showErrors(new Error("Not connected: wait until the connection is back."));
    return;
  }
  state.busy += 1;
  hideErrors();
  updateControls();
  try {
    await action();
  } catch (error) {
    showErrors(error);
    // A refused answer (e.g. not enough balance) is still saved, failed: show it.
    if (reread) await reload().catch(() => {});
  } finally {
    state.busy -= 1;
    updateControls();
  }
}

function updateControls() {
  const online = state.api !== null;
  const streaming = view.streaming();
  els.send.disabled = !online || state.busy > 0 || streaming;
  els.sendHint.textContent = streaming ? "Wait for the answer, or cancel it." : "Ctrl+Enter sends.";
  els.dialog.disabled = !online;
  els.model.disabled = !online;
  els.agent.disabled = !online || state.dialogId !== null; // an agent is chosen per dialog
  els.newDialog.disabled = !online;
}

els.form.addEventListener("submit", send);
els.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) els.form.requestSubmit();
});
els.dialog.addEventListener("change", () => {
  if (els.dialog.value) run(() => openDialog(els.dialog.value));
  else newDialog();
});
els.agent.addEventListener("change", () => {
  pickModel(state.agents.get(els.agent.value)?.model?.name);
});
els.newDialog.addEventListener("click", newDialog);
setInterval(() => {
  const quiet = performance.now() - state.lastEventAt > QUIET_CHECK_MS;
  if (state.pending.size && quiet && state.busy === 0 && state.api) {
    state.lastEventAt = performance.now();
    reload().catch(showErrors);
  }
}, 1_000);

updateControls();
connect();
