// streamgate's JavaScript client: pub/sub channels and live JSON documents over one
// streaming connection to a streamgate gateway. An ES module without dependencies.
//
//   import { Gateway } from "/client/streamgate.js";
//   const gw = new Gateway("https://gw.example.com", { key: "app:secret" });
//   const orders = gw.channel("orders", { rewind: 10 });
//   orders.subscribe((message) => console.log(message.name, message.data));
//   const quotes = gw.document("https://api.example.com/quotes", { pollInterval: 1000 });
//   quotes.subscribe((value, patch) => render(value));
//
// Every channel and document of one Gateway shares one dynamic connection
// (`/sse?dynamic=true`): adding or dropping one never reconnects. The browser's EventSource
// reconnects by itself and the gateway resumes the connection from the last event id, so
// nothing is lost; when it cannot (the gateway forgot the connection), the client adds its
// streams again. An expired token (error 40142) asks `authCallback` for a new one and
// resumes where it was. See docs/CLIENT.md.

const EXPIRED_TOKEN = 40142;
const UNKNOWN_CONNECTION = 40410;
/** Events of a stream not yet named kept at most (see `_open`). */
const UNCLAIMED = 1000;

/** A gateway, and the one streaming connection all its subscriptions share. */
export class Gateway {
  /**
   * @param {string} baseUrl the gateway's address, e.g. "https://gw.example.com"
   * @param {{key?: string, token?: string, authCallback?: () => Promise<string>}} [options]
   */
  constructor(baseUrl, options = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.key = options.key;
    this.token = options.token;
    this.authCallback = options.authCallback;
    /** Streams by their name on the connection: a channel's name, a document's URL. */
    this.streams = new Map();
    /** Documents by what they follow: asked for twice, one document. */
    this.documents = new Map();
    /** A document's first events may come before the answer that names its stream. */
    this.unclaimed = new Map();
    this.source = null;
    this.connectionId = null;
    this.lastEventId = null;
    this.closed = false;
    /** Resolves with the connection id once the connection is up. */
    this.connected = null;
    this._open();
  }

  /**
   * A pub/sub channel.
   * @param {string} name
   * @param {{rewind?: number}} [options] messages from history to start with
   */
  channel(name, options = {}) {
    let channel = this.streams.get(name);
    if (!channel) {
      channel = new Channel(this, name, options);
      this.streams.set(name, channel);
    }
    return channel;
  }

  /**
   * A live JSON document: a polled API turned into a delta stream by the gateway.
   * @param {string} pathOrUrl the URL of a JSON API the gateway may poll (`[poll]
   *   allowed_targets`), or its path on the gateway's own origin
   * @param {{select?: string, pollInterval?: number}} [options]
   */
  document(pathOrUrl, options = {}) {
    // A configured API by its gateway path (`/apis/{api}/...`) is the gateway's to make
    // (with the API's secrets, which stay there); anything else is a URL to poll.
    const url = new URL(pathOrUrl, this.baseUrl + "/");
    const gateway = new URL(this.baseUrl + "/");
    const target =
      url.origin === gateway.origin && url.pathname.startsWith("/apis/")
        ? url.pathname + url.search
        : url.href;
    const key = JSON.stringify([target, options.select ?? null, options.pollInterval ?? null]);
    let document = this.documents.get(key);
    if (!document) {
      document = new LiveDocument(this, target, options, key);
      this.documents.set(key, document);
    }
    return document;
  }

  /** Ends every subscription and the connection. */
  close() {
    this.closed = true;
    if (this.source) this.source.close();
    this.source = null;
    this.streams.clear();
    this.documents.clear();
    this.unclaimed.clear();
  }

  /** The credential as query parameters. */
  _credential() {
    const query = new URLSearchParams();
    if (this.token) query.set("accessToken", this.token);
    else if (this.key) query.set("key", this.key);
    return query;
  }

  /** Headers that carry the credential on REST calls. */
  _headers(extra = {}) {
    const headers = { ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    else if (this.key) headers.Authorization = `Basic ${btoa(this.key)}`;
    return headers;
  }

  /** Opens the streaming connection, resuming after `lastEventId` if there is one. */
  _open() {
    if (this.closed) return;
    const query = this._credential();
    query.set("dynamic", "true");
    if (this.lastEventId) query.set("lastEvent", this.lastEventId);
    let ready;
    this.connected = new Promise((resolve) => (ready = resolve));
    const source = new EventSource(`${this.baseUrl}/sse?${query}`);
    this.source = source;
    source.addEventListener("connected", (e) => {
      const { connectionId } = JSON.parse(e.data);
      this.failures = 0;
      // A connection the gateway resumed has its streams; one it started anew (it no
      // longer knew ours, or the browser reconnected before any event) gets them added
      // again, on this connection.
      const anew = this.connectionId !== null && connectionId !== this.connectionId;
      this.connectionId = connectionId;
      ready(connectionId);
      this.connected = Promise.resolve(connectionId);
      if (anew) for (const stream of this.streams.values()) stream._reattach();
    });
    const track = (e) => {
      if (e.lastEventId) this.lastEventId = e.lastEventId;
    };
    source.addEventListener("message", (e) => {
      track(e);
      const message = JSON.parse(e.data);
      const channel = this.streams.get(message.channel);
      if (channel instanceof Channel) channel._deliver(message);
    });
    for (const kind of ["data", "patch"]) {
      source.addEventListener(kind, (e) => {
        track(e);
        const { channel, data } = JSON.parse(e.data);
        const document = this.streams.get(channel);
        if (document instanceof LiveDocument) document._apply(kind, data);
        else {
          // Its stream's name is not known yet (the answer adding it is on its way): a
          // whole document replaces what came before it; past the bound, the patches
          // kept are dropped and the document asks for a whole one once claimed.
          let waiting = this.unclaimed.get(channel) || [];
          if (kind === "data") waiting = [];
          if (waiting.length < UNCLAIMED) waiting.push([kind, data]);
          else waiting = [["overflow"]];
          this.unclaimed.set(channel, waiting);
        }
      });
    }
    source.addEventListener("error", (e) => {
      if (!e.data) {
        // The connection dropped: EventSource reconnects by itself, unless the gateway
        // answered with an error (it refused a resume, the gateway is restarting, the
        // credential is refused): then the client opens it again, resuming once, then
        // anew, waiting longer each time.
        if (source.readyState === EventSource.CLOSED && this.source === source) this._retry();
        return;
      }
      const info = JSON.parse(e.data);
      const error = info.error || info;
      if (error.code === EXPIRED_TOKEN) this._renew(error);
      else if (error.code === UNKNOWN_CONNECTION) this.lastEventId = null;
      else {
        // A stream's error names it; one that does not is the connection's.
        const stream = info.channel && this.streams.get(info.channel);
        const errorInfo = info.channel ? info.data?.error || info.data : error;
        if (stream) stream._error(errorInfo);
        else for (const each of this.streams.values()) each._error(errorInfo);
      }
    });
  }

  /** Opens the connection again after the gateway refused it. */
  _retry() {
    if (this.closed) return;
    this.failures = (this.failures || 0) + 1;
    // The first retry resumes; later ones start a new connection.
    if (this.failures > 1) this.lastEventId = null;
    const wait = Math.min(1000 * 2 ** (this.failures - 1), 30000);
    setTimeout(() => this._open(), wait);
  }

  /** A new token from `authCallback`, then the connection again where it was. */
  async _renew(error) {
    if (this.source) this.source.close();
    this.source = null;
    if (!this.authCallback) {
      for (const stream of this.streams.values()) stream._error(error);
      return;
    }
    try {
      this.token = await this.authCallback();
    } catch (e) {
      for (const stream of this.streams.values()) stream._error(e);
      setTimeout(() => this._renew(error), 5000);
      return;
    }
    this._open();
  }

  /** Asks the connection to carry `stream` (unless it does already); its name on it. */
  async _add(body, stream) {
    const id = await this.connected;
    if (stream.on === id) return stream.name;
    stream.on = id;
    const query = this._credential();
    const response = await fetch(`${this.baseUrl}/connections/${encodeURIComponent(id)}/subscriptions?${query}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      stream.on = null;
      throw new GatewayError(answer.error);
    }
    return answer.stream;
  }

  /** Drops a stream from the connection. */
  async _remove(name) {
    this.streams.delete(name);
    if (!this.connectionId || this.closed) return;
    const query = this._credential();
    const stream = encodeURIComponent(name);
    const id = encodeURIComponent(this.connectionId);
    await fetch(`${this.baseUrl}/connections/${id}/subscriptions/${stream}?${query}`, {
      method: "DELETE",
    });
  }
}

/** An error the gateway answered: Ably's ErrorInfo. */
export class GatewayError extends Error {
  constructor(info = {}) {
    super(info.message || "the gateway refused");
    this.code = info.code;
    this.statusCode = info.statusCode;
    this.href = info.href;
  }
}

/** A pub/sub channel: its messages in order, publishing, history. */
export class Channel {
  constructor(gateway, name, options) {
    this.gateway = gateway;
    this.name = name;
    this.rewind = options.rewind;
    this.listeners = new Set();
    this.attached = null;
  }

  /** Calls `listener(message)` for each message, in order; attaches on the first call. */
  subscribe(listener) {
    this.listeners.add(listener);
    this.gateway.streams.set(this.name, this);
    if (!this.attached) this._attach(this.rewind);
    return this.attached;
  }

  /** Publishes `{name?, data, id?}`; resolves with the gateway's answer. */
  async publish(message) {
    const gateway = this.gateway;
    const url = `${gateway.baseUrl}/channels/${encodeURIComponent(this.name)}/messages`;
    const response = await fetch(url, {
      method: "POST",
      headers: gateway._headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(message),
    });
    const answer = await response.json();
    if (!response.ok) throw new GatewayError(answer.error);
    return answer;
  }

  /** The channel's retained messages, oldest first. */
  async history() {
    const gateway = this.gateway;
    const query = new URLSearchParams({ direction: "forwards", limit: "1000" });
    const url = `${gateway.baseUrl}/channels/${encodeURIComponent(this.name)}/messages?${query}`;
    const response = await fetch(url, { headers: gateway._headers() });
    const answer = await response.json();
    if (!response.ok) throw new GatewayError(answer.error);
    return answer;
  }

  /**
   * Stops calling `listener` (every listener, without one); once none is left, drops the
   * channel from the connection.
   */
  unsubscribe(listener) {
    if (listener) this.listeners.delete(listener);
    else this.listeners.clear();
    if (this.listeners.size > 0) return Promise.resolve();
    const attached = this.attached || Promise.resolve();
    this.attached = null;
    this.on = null;
    // Removed once added, if the answer adding it is still on its way.
    return attached.catch(() => {}).then(() => this.gateway._remove(this.name));
  }

  _attach(rewind) {
    const body = { channel: this.name };
    if (rewind) body.rewind = rewind;
    this.attached = this.gateway._add(body, this);
    this.attached.catch((e) => this._error(e));
    return this.attached;
  }

  /** On a new connection: subscribed again, from live (a rewind is not repeated). */
  _reattach() {
    if (this.listeners.size > 0) this._attach();
  }

  _deliver(message) {
    for (const listener of this.listeners) listener(message);
  }

  _error(error) {
    this.lastError = error;
  }
}

/** A live JSON document: `value` is the document now; each change calls the listeners. */
export class LiveDocument {
  constructor(gateway, url, options, key) {
    this.gateway = gateway;
    this.url = url;
    this.options = options;
    this.key = key;
    this.value = undefined;
    this.listeners = new Set();
    this.stream = null;
    this.attached = null;
  }

  /**
   * Calls `listener(value, patch)` with the document (patch null: the first one, or the one
   * held already) and after each change.
   */
  subscribe(listener) {
    this.listeners.add(listener);
    if (!this.attached) this._attach();
    else if (this.value !== undefined && !this.stale) listener(this.value, null);
    return this.attached;
  }

  /**
   * Stops calling `listener` (every listener, without one); once none is left, drops the
   * document from the connection.
   */
  unsubscribe(listener) {
    if (listener) this.listeners.delete(listener);
    else this.listeners.clear();
    if (this.listeners.size > 0) return Promise.resolve();
    if (this.gateway.documents.get(this.key) === this) this.gateway.documents.delete(this.key);
    this.on = null;
    const attached = this.attached;
    this.attached = null;
    // Removed once added, if the answer adding it is still on its way.
    const removing = attached ? attached.then((stream) => this.gateway._remove(stream)) : null;
    return removing ? removing.catch(() => {}) : Promise.resolve();
  }

  /** On a new connection: followed again (a fresh whole document comes first). */
  _reattach() {
    if (this.listeners.size > 0) this._attach();
  }

  _attach() {
    const body = { poll: this.url };
    if (this.options.select) body.select = this.options.select;
    if (this.options.pollInterval) body.pollInterval = this.options.pollInterval;
    this.attached = this.gateway._add(body, this).then((stream) => {
      this.stream = stream;
      this.gateway.streams.set(stream, this);
      const waiting = this.gateway.unclaimed.get(stream) || [];
      this.gateway.unclaimed.delete(stream);
      for (const [kind, data] of waiting) this._apply(kind, data);
      return stream;
    });
    return this.attached;
  }

  _apply(kind, data) {
    let patch = null;
    if (kind === "overflow") {
      this._refetch(new Error("more early events than the client keeps"));
      return;
    }
    if (kind === "data") {
      // The whole document: a first one, or a fresh one after a gap.
      this.value = data;
      this.stale = false;
    } else if (this.stale || this.value === undefined) {
      return; // a patch of a document not held: wait for the next whole one
    } else {
      patch = data;
      try {
        this.value = applyPatch(this.value, patch);
      } catch (error) {
        // Not applicable (a bug somewhere): ask for the document again, whole.
        this._refetch(error);
        return;
      }
    }
    for (const listener of this.listeners) listener(this.value, patch);
  }

  /** Drops the document from the connection and adds it again, for a fresh whole one. */
  _refetch(error) {
    this.stale = true;
    this.lastError = error;
    if (this.stream && this.listeners.size > 0) {
      this.on = null;
      this.gateway._remove(this.stream).then(() => this.listeners.size > 0 && this._attach());
    }
  }

  _error(error) {
    this.lastError = error;
  }
}

/**
 * Applies a JSON Patch (RFC 6902) to `document`; the new document (`document` is left as
 * it was). Throws when an operation cannot apply: the patch is then not applied at all.
 */
export function applyPatch(document, patch) {
  let result = structuredClone(document);
  for (const op of patch) result = applyOperation(result, op);
  return result;
}

function applyOperation(document, op) {
  const path = parsePointer(op.path);
  if (["add", "replace", "test"].includes(op.op) && !("value" in op)) {
    throw new Error(`${op.op} at ${op.path} has no value`);
  }
  switch (op.op) {
    case "add":
      return put(document, path, structuredClone(op.value));
    case "remove":
      return take(document, path).document;
    case "replace":
      return replace(document, path, structuredClone(op.value));
    case "move": {
      // Into its own child is no place (RFC 6902, 4.4).
      if (op.path.startsWith(op.from + "/")) throw new Error(`cannot move ${op.from} into itself`);
      const from = parsePointer(op.from);
      const { document: without, value } = take(document, from);
      return put(without, path, value);
    }
    case "copy":
      return put(document, path, structuredClone(get(document, parsePointer(op.from))));
    case "test":
      if (!deepEqual(get(document, path), op.value)) throw new Error(`test failed at ${op.path}`);
      return document;
    default:
      throw new Error(`unknown operation ${op.op}`);
  }
}

function parsePointer(pointer) {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new Error(`not a JSON pointer: ${pointer}`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function get(document, path) {
  let node = document;
  for (const token of path) {
    if (Array.isArray(node)) node = node[arrayIndex(node, token, false)];
    else if (node !== null && typeof node === "object" && Object.hasOwn(node, token)) node = node[token];
    else throw new Error(`no member ${token}`);
  }
  return node;
}

function arrayIndex(array, token, adding) {
  if (adding && token === "-") return array.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`not an array index: ${token}`);
  const index = Number(token);
  if (index > array.length || (!adding && index === array.length)) throw new Error(`index ${token} out of range`);
  return index;
}

/** `document` with `value` at `path` (added into an array, or set in an object). */
function put(document, path, value) {
  if (path.length === 0) return value;
  const parent = get(document, path.slice(0, -1));
  const last = path[path.length - 1];
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true), 0, value);
  else if (parent !== null && typeof parent === "object") {
    // An own member whatever its name (`__proto__` included).
    Object.defineProperty(parent, last, { value, writable: true, enumerable: true, configurable: true });
  } else throw new Error(`cannot add under a ${typeof parent}`);
  return document;
}

/** `document` with what is at `path` (which must exist) replaced by `value`, in place. */
function replace(document, path, value) {
  if (path.length === 0) return value;
  const parent = get(document, path.slice(0, -1));
  const last = path[path.length - 1];
  if (Array.isArray(parent)) parent[arrayIndex(parent, last, false)] = value;
  else if (parent !== null && typeof parent === "object" && Object.hasOwn(parent, last)) parent[last] = value;
  else throw new Error(`no member ${last}`);
  return document;
}

/** `document` without what is at `path`, and that value. */
function take(document, path) {
  if (path.length === 0) return { document: undefined, value: document };
  const parent = get(document, path.slice(0, -1));
  const last = path[path.length - 1];
  let value;
  if (Array.isArray(parent)) value = parent.splice(arrayIndex(parent, last, false), 1)[0];
  else if (parent !== null && typeof parent === "object" && Object.hasOwn(parent, last)) {
    value = parent[last];
    delete parent[last];
  } else throw new Error(`no member ${last}`);
  return { document, value };
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}
