// The GraphQL operations the playground runs: every one is public API (schema.graphql),
// sent over the websocket like any other client would send it.

const MESSAGE = `
  fragment PlaygroundMessage on Message {
    id role content status modelName parentId siblingIds siblingPosition
    promptTokens completionTokens chargedTokens errorCode errorMessage ttftMs totalMs
  }`;

const DIALOG = `
  fragment PlaygroundDialog on Dialog {
    id title updatedAt model { name } agent { id name }
  }`;

const SETUP = `
  query PlaygroundSetup {
    models { name displayName enabled isDefault }
    agents { id name enabled model { name } }
    dialogs(first: 30) { edges { node { ...PlaygroundDialog } } }
  }
  ${DIALOG}`;

const MESSAGES = `
  query PlaygroundMessages($dialogId: UUID!, $after: String) {
    messages(dialogId: $dialogId, first: 100, after: $after) {
      edges { node { ...PlaygroundMessage } }
      pageInfo { hasNextPage endCursor }
    }
  }
  ${MESSAGE}`;

const CREATE_DIALOG = `
  mutation PlaygroundCreateDialog($input: CreateDialogInput!) {
    createDialog(input: $input) { ...PlaygroundDialog }
  }
  ${DIALOG}`;

const SENT = `userMessage { ...PlaygroundMessage } assistantMessage { ...PlaygroundMessage }`;

const SEND = `
  mutation PlaygroundSend($input: SendMessageInput!) { sendMessage(input: $input) { ${SENT} } }
  ${MESSAGE}`;

const REGENERATE = `
  mutation PlaygroundRegenerate($input: RegenerateInput!) { regenerate(input: $input) { ${SENT} } }
  ${MESSAGE}`;

const CANCEL = `
  mutation PlaygroundCancel($input: CancelGenerationInput!) {
    cancelGeneration(input: $input) { ...PlaygroundMessage }
  }
  ${MESSAGE}`;

const SWITCH_BRANCH = `
  mutation PlaygroundSwitchBranch($input: SwitchBranchInput!) {
    switchBranch(input: $input) { id activeLeafId }
  }`;

// A dialog's answers as they happen. Subscribe before sending: an answer already
// streaming when the subscription starts is caught up (its first delta carries the text
// so far), but one that ended before it started is not replayed.
const MESSAGE_EVENTS = `
  subscription PlaygroundEvents($dialogId: UUID!) {
    messageEvents(dialogId: $dialogId) {
      __typename
      ... on MessageStarted { message { ...PlaygroundMessage } }
      ... on MessageDelta { messageId seq text }
      ... on MessageCompleted {
        message { ...PlaygroundMessage }
        usage { promptTokens completionTokens chargedTokens costUsd }
        balance { balance available }
      }
      ... on MessageFailed { messageId code errorMessage final { ...PlaygroundMessage } }
    }
  }
  ${MESSAGE}`;

// The caller's balance: the current one at once, then after every change.
const BALANCE = `
  subscription PlaygroundBalance {
    balanceChanged { reason balance { balance available reserved } }
  }`;

/** The operations, bound to one GraphQLSocket. */
export class PlaygroundApi {
  constructor(socket) {
    this.socket = socket;
  }

  async setup() {
    const data = await this.socket.request(SETUP);
    return {
      models: data.models.filter((model) => model.enabled),
      agents: data.agents.filter((agent) => agent.enabled),
      dialogs: data.dialogs.edges.map((edge) => edge.node),
    };
  }

  /** The dialog's active branch, oldest first (every page of it). */
  async messages(dialogId) {
    const messages = [];
    let after = null;
    for (;;) {
      const data = await this.socket.request(MESSAGES, { dialogId, after });
      messages.push(...data.messages.edges.map((edge) => edge.node));
      if (!data.messages.pageInfo.hasNextPage) return messages;
      after = data.messages.pageInfo.endCursor;
    }
  }

  async createDialog(input) {
    return (await this.socket.request(CREATE_DIALOG, { input })).createDialog;
  }

  async send(input) {
    return (await this.socket.request(SEND, { input })).sendMessage;
  }

  async regenerate(messageId) {
    return (await this.socket.request(REGENERATE, { input: { messageId } })).regenerate;
  }

  async cancel(messageId) {
    return (await this.socket.request(CANCEL, { input: { messageId } })).cancelGeneration;
  }

  async switchBranch(dialogId, messageId) {
    const data = await this.socket.request(SWITCH_BRANCH, { input: { dialogId, messageId } });
    return data.switchBranch;
  }

  /** Follow a dialog's answers; ``onEvent`` gets each event. Returns the stop function. */
  messageEvents(dialogId, onEvent, onError) {
    return this.socket.subscribe(MESSAGE_EVENTS, { dialogId }, sink(onError, (data) => {
      onEvent(data.messageEvents);
    }));
  }

  /** Follow the caller's balance. Returns the stop function. */
  balance(onBalance, onError) {
    return this.socket.subscribe(BALANCE, {}, sink(onError, (data) => {
      onBalance(data.balanceChanged.balance);
    }));
  }
}

// A subscription's results: data to ``onData``; errors (in a result, or refusing the
// operation) to ``onError``. A socket that closed is reported by the socket itself.
function sink(onError, onData) {
  return {
    next(result) {
      if (result.errors?.length) onError(result.errors);
      else if (result.data) onData(result.data);
    },
    error(error) {
      if (error.name !== "SocketClosed") onError(error.errors ?? [error]);
    },
    complete() {},
  };
}
