// Types of streamgate's JavaScript client (streamgate.js).

/** Ably's Message, as the gateway delivers it. */
export interface Message {
  id: string;
  channel: string;
  name?: string | null;
  data: unknown;
  encoding?: string | null;
  timestamp: number;
}

/** One JSON Patch (RFC 6902) operation. */
export interface Operation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  from?: string;
  value?: unknown;
}

export interface GatewayOptions {
  /** An API key, `name:secret`. */
  key?: string;
  /** A JWT. */
  token?: string;
  /** Called for a new token when the current one expired (error 40142). */
  authCallback?: () => Promise<string>;
}

/** An error the gateway answered: Ably's ErrorInfo. */
export class GatewayError extends Error {
  code?: number;
  statusCode?: number;
  href?: string;
}

export class Channel {
  readonly name: string;
  /** Calls `listener` for each message, in order; resolves once the channel is attached. */
  subscribe(listener: (message: Message) => void): Promise<string>;
  /** Publishes a message; resolves with the gateway's answer. */
  publish(message: { name?: string; data: unknown; id?: string }): Promise<unknown>;
  /** The retained messages, oldest first. */
  history(): Promise<Message[]>;
  /** Stops `listener` (every listener, without one); the last one gone, the channel is dropped. */
  unsubscribe(listener?: (message: Message) => void): Promise<void>;
}

export class LiveDocument<T = unknown> {
  /** The document now (undefined until the first one arrived). */
  readonly value: T | undefined;
  /** Calls `listener` with the document (patch null) and after each change. */
  subscribe(listener: (value: T, patch: Operation[] | null) => void): Promise<string>;
  /** Stops `listener` (every listener, without one); the last one gone, the document is dropped. */
  unsubscribe(listener?: (value: T, patch: Operation[] | null) => void): Promise<void>;
}

export class Gateway {
  constructor(baseUrl: string, options?: GatewayOptions);
  /** The channel `name`: the same object every time. */
  channel(name: string, options?: { rewind?: number }): Channel;
  /**
   * A live document: a configured API by its gateway path (`/apis/{api}/...`), or a URL the
   * gateway may poll; the same object for the same path or URL and options.
   */
  document<T = unknown>(
    pathOrUrl: string,
    options?: { select?: string; pollInterval?: number },
  ): LiveDocument<T>;
  close(): void;
}

/** Applies a JSON Patch to a copy of `document`; throws if an operation cannot apply. */
export function applyPatch<T = unknown>(document: unknown, patch: Operation[]): T;
