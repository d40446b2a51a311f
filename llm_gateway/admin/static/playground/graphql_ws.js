// A minimal graphql-transport-ws client: everything a browser needs to talk to the
// gateway's /graphql websocket, in one readable file (no library, no build step).
//
// The protocol (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md) in short:
//   client → connection_init {payload}   first message; the payload carries the token
//   server → connection_ack {payload}    or the socket closes with 4403 (token refused)
//   client → subscribe {id, payload: {query, variables}}
//   server → next {id, payload: {data, errors}}   once for a query or mutation, once per
//                                                  event for a subscription
//   server → error {id, payload: [errors]}        the operation was refused (invalid
//                                                  document): it is over, no complete follows
//   server → complete {id}                        the operation is over
//   client → complete {id}                        stop a subscription we no longer want
//   either → ping, answered by pong               keep-alive through proxies
// Queries, mutations and subscriptions all travel over the same socket, each under an id
// the client picks (unique while the operation runs).

export const PROTOCOL = "graphql-transport-ws";

// Close codes worth telling a person about (the rest: "the connection dropped").
const CLOSE_REASONS = {
  1000: "closed",
  1001: "the page is going away",
  1012: "the server is restarting",
  4400: "the server refused a malformed message",
  4401: "an operation was sent before the server acknowledged the connection",
  4403: "the server refused the access token",
  4408: "the connection was not initialised in time",
  4429: "too many connection_init messages",
};

/** The server answered an operation with errors (``extensions.code`` says which). */
export class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((error) => error.message).join("; ") || "The request failed.");
    this.name = "GraphQLError";
    this.errors = errors;
    this.code = errors[0]?.extensions?.code ?? null;
  }
}

/** The socket closed: every operation still running ends with this error. */
export class SocketClosed extends Error {
  constructor(code, reason) {
    const known = CLOSE_REASONS[code] ?? "the connection dropped";
    super(`Disconnected: ${known}${reason ? ` (${code} ${reason})` : ` (${code})`}.`);
    this.name = "SocketClosed";
    this.code = code;
  }
}

export class GraphQLSocket {
  /**
   * @param {string} url the endpoint, ws://host/graphql or wss://host/graphql
   * @param {object} payload sent in connection_init; the gateway reads
   *   ``{Authorization: "Bearer <token>"}`` from it (a browser cannot set headers on a
   *   websocket, so the token travels here instead)
   * @param {{keepAliveMs?: number}} options ping this often while connected (0: never)
   */
  constructor(url, payload, { keepAliveMs = 30_000 } = {}) {
    this.url = url;
    this.payload = payload;
    this.keepAliveMs = keepAliveMs;
    this.socket = null;
    this.nextId = 1;
    this.operations = new Map(); // id → sink {next, error, complete}
    this.keepAlive = null;
    this.closing = false;
    /** Called once if the socket closes after the ack and not through ``close()``. */
    this.onclose = () => {};
  }

  /** Open the socket and initialise it; resolves with the connection_ack payload. */
  connect() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url, PROTOCOL);
      this.socket = socket;
      let acknowledged = false;
      socket.addEventListener("open", () => {
        // Nothing but connection_init may be sent until the ack arrives (else 4401).
        this.#send({ type: "connection_init", payload: this.payload });
      });
      socket.addEventListener("message", (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "connection_ack") {
          acknowledged = true;
          if (this.keepAliveMs > 0) {
            this.keepAlive = setInterval(() => this.#ping(), this.keepAliveMs);
          }
          resolve(message.payload ?? {});
          return;
        }
        this.#receive(message);
      });
      // A failed connection fires "error" and then "close": the close event says it all.
      socket.addEventListener("close", (event) => {
        clearInterval(this.keepAlive);
        const closed = new SocketClosed(event.code, event.reason);
        const running = [...this.operations.values()];
        this.operations.clear();
        running.forEach((sink) => sink.error(closed));
        if (!acknowledged) reject(closed);
        else if (!this.closing) this.onclose(closed);
      });
    });
  }

  /**
   * Start an operation; ``sink.next`` gets each result ({data, errors}), then exactly one
   * of ``sink.complete()`` or ``sink.error(error)``. Returns a function that stops it.
   */
  subscribe(query, variables, sink) {
    const id = String(this.nextId++);
    this.operations.set(id, sink);
    try {
      this.#send({ id, type: "subscribe", payload: { query, variables: variables ?? {} } });
    } catch (error) {
      this.operations.delete(id);
      sink.error(error);
    }
    return () => {
      // Only an operation still running is completed by us: the server forgets the id.
      if (this.operations.delete(id) && this.socket?.readyState === WebSocket.OPEN) {
        this.#send({ id, type: "complete" });
      }
    };
  }

  /** A query or mutation: resolves with its ``data``, rejects with a GraphQLError. */
  request(query, variables) {
    return new Promise((resolve, reject) => {
      let result = null;
      this.subscribe(query, variables, {
        next: (payload) => {
          result = payload;
        },
        error: reject,
        complete: () => {
          if (result?.errors?.length) reject(new GraphQLError(result.errors));
          else if (result?.data) resolve(result.data);
          else reject(new Error("The server completed the request without a result."));
        },
      });
    });
  }

  /** Close on purpose: running operations end with SocketClosed, ``onclose`` is not called. */
  close() {
    this.closing = true;
    this.socket?.close(1000, "Normal Closure");
  }

  #receive(message) {
    if (message.type === "ping") {
      this.#send({ type: "pong" }); // a ping must be answered, even one we did not expect
      return;
    }
    if (message.type === "pong") return; // the answer to our keep-alive
    const sink = this.operations.get(message.id);
    if (!sink) return; // an operation we stopped: its last messages may still arrive
    if (message.type === "next") {
      sink.next(message.payload);
    } else if (message.type === "error") {
      this.operations.delete(message.id);
      sink.error(new GraphQLError(message.payload));
    } else if (message.type === "complete") {
      this.operations.delete(message.id);
      sink.complete();
    }
  }

  #ping() {
    if (this.socket?.readyState === WebSocket.OPEN) this.#send({ type: "ping" });
  }

  #send(message) {
    if (this.socket?.readyState !== WebSocket.OPEN) {
      throw new SocketClosed(1006, "not connected");
    }
    this.socket.send(JSON.stringify(message));
  }
}

/** The endpoint's websocket address, from a path on this page's own origin. */
export function socketUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}
