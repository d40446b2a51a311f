// The page's own controls: the setup selects, the balance, the error and status lines.
// No GraphQL here; playground.js decides what they show.

const $ = (id) => document.getElementById(id);
export const els = {
  root: $("playground"),
  dialog: $("pg-dialog"),
  model: $("pg-model"),
  agent: $("pg-agent"),
  newDialog: $("pg-new"),
  form: $("pg-form"),
  input: $("pg-input"),
  send: $("pg-send"),
  sendHint: $("pg-send-hint"),
  balance: $("pg-balance"),
  available: $("pg-available"),
  connection: $("pg-connection"),
  error: $("pg-error"),
  messages: $("pg-messages"),
  empty: $("pg-empty"),
};
const number = new Intl.NumberFormat("en-US");

/** Fill the selects from the setup query, keeping what was chosen where it still exists. */
export function fillSetup({ models, agents, dialogs }, dialogId) {
  const chosenModel = els.model.value;
  const chosenAgent = els.agent.value;
  els.model.replaceChildren(
    ...models.map((model) => option(model.name, model.displayName || model.name)),
  );
  const usual = (models.find((model) => model.isDefault) ?? models[0])?.name ?? "";
  els.model.value = hasOption(els.model, chosenModel) ? chosenModel : usual;
  els.agent.replaceChildren(
    option("", "No agent"),
    ...agents.map((agent) => option(String(agent.id), agent.name)),
  );
  els.agent.value = hasOption(els.agent, chosenAgent) ? chosenAgent : "";
  els.dialog.replaceChildren(
    option("", "New dialog"),
    ...dialogs.map((dialog) => option(dialog.id, dialogLabel(dialog))),
  );
  els.dialog.value = dialogId ?? "";
}

/** A dialog just created: first in the picker, and picked. */
export function addDialog(dialog) {
  els.dialog.insertBefore(option(dialog.id, dialogLabel(dialog)), els.dialog.options[1] ?? null);
  els.dialog.value = dialog.id;
}

/** Show a dialog's model and agent in the selects. */
export function showDialog(dialog) {
  els.dialog.value = dialog.id;
  if (hasOption(els.model, dialog.model.name)) els.model.value = dialog.model.name;
  els.agent.value = dialog.agent ? String(dialog.agent.id) : "";
}

export function pickModel(name) {
  if (name && hasOption(els.model, name)) els.model.value = name;
}

export function showBalance(balance) {
  els.balance.textContent = `${number.format(balance.balance)} tokens`;
  els.available.textContent = `${number.format(balance.available)} tokens`;
}

/** Errors of a result (an array), or one thrown while running an operation. */
export function showErrors(problem) {
  const errors = Array.isArray(problem) ? problem : (problem.errors ?? [problem]);
  const codes = errors.map((error) => error.extensions?.code ?? error.code ?? null);
  const text = errors
    .map((error, index) => (codes[index] ? `${error.message} (${codes[index]})` : error.message))
    .join(" ");
  const expired = codes.includes("UNAUTHENTICATED");
  els.error.textContent = expired ? `${text} Sign in again to get a fresh token.` : text;
  els.error.hidden = false;
}

export function hideErrors() {
  els.error.hidden = true;
}

export function showStatus(text) {
  els.connection.textContent = text;
}

function dialogLabel(dialog) {
  return `${dialog.title || "Untitled dialog"} · ${dialog.model.name}`;
}

function option(value, label) {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = label;
  return node;
}

function hasOption(select, value) {
  return [...select.options].some((node) => node.value === value);
}
