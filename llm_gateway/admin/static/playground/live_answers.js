// What the subscription told us about answers, newer than any list we read.
//
// Events and query results arrive in no guaranteed order over one socket: a mutation's
// answer (the new message, still STREAMING) may come after the deltas or even the end of
// that message, and a list read while an answer streams holds only the text saved so far.
// So the streamed text and the ends are kept here, and every message read or returned
// later is shown as ``current(message)`` says.

export class LiveAnswers {
  constructor() {
    this.texts = new Map(); // id → {seq, text}: what the deltas have said so far
    this.followed = new Set(); // ids that had a delta on the current subscription
    this.ends = new Map(); // id → {message, usage}: answers that completed or failed
  }

  /** A new messageEvents subscription: its first delta per answer is the text so far. */
  resubscribed() {
    this.followed.clear();
  }

  /**
   * Apply a MessageDelta; returns the answer's whole text so far.
   *
   * ``seq`` numbers an answer's deltas 1, 2, 3, … On a subscription that joined while the
   * answer was streaming, the first delta carries all the text so far, with the seq it
   * reaches; after that each delta continues the text. A seq already seen is a repeat.
   */
  delta({ messageId, seq, text }) {
    const known = this.texts.get(messageId);
    if (!this.followed.has(messageId) || !known) {
      this.followed.add(messageId);
      this.texts.set(messageId, { seq, text });
      return text;
    }
    if (seq > known.seq) {
      known.seq = seq;
      known.text += text;
    }
    return known.text;
  }

  /** A MessageCompleted or MessageFailed: the stored message is final. */
  end(message, usage) {
    const earlier = this.ends.get(message.id);
    this.ends.set(message.id, { message, usage: usage ?? earlier?.usage ?? null });
    this.texts.delete(message.id);
  }

  /** The freshest ``{message, usage}`` for a message read or returned earlier. */
  current(message) {
    const end = this.ends.get(message.id);
    if (message.status !== "STREAMING") return { message, usage: end?.usage ?? null };
    if (end) return end; // the read was older than the end we already know of
    const streamed = this.texts.get(message.id);
    return { message: streamed ? { ...message, content: streamed.text } : message, usage: null };
  }
}
