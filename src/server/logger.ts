/**
 * A small structured logger that writes one JSON object per line, in the
 * shape of etcd's zap output:
 *
 *   {"level":"info","ts":"2026-11-25T02:40:00.123Z","logger":"raft","caller":"raft/node.ts","msg":"became leader","term":3}
 *
 * There is no global logger: the composition root creates one with
 * {@link createLogger} and hands it (or children of it) to every module that
 * logs. Modules accept the {@link Logger} interface; tests pass
 * {@link nullLogger} or a logger over a {@link createMemorySink}.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';

/** Severity levels, lowest first; the same names etcd's `--log-level` accepts. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';

/** Every level name, lowest severity first. The array is frozen. */
export const LOG_LEVELS: readonly LogLevel[] = Object.freeze(['debug', 'info', 'warn', 'error', 'panic', 'fatal']);

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = {
  debug: 0,
  info: 1,
  warn: 2,
  error: 3,
  panic: 4,
  fatal: 5,
};

/** Returns true when `value` is one of the {@link LOG_LEVELS} names. */
export function isLogLevel(value: string): value is LogLevel {
  return Object.prototype.hasOwnProperty.call(LEVEL_RANK, value);
}

/**
 * Structured fields attached to one record. Values are encoded as described
 * on {@link encodeFieldValue}; `undefined` values are left out.
 */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * What every module that logs depends on. Methods never throw and never
 * block on I/O; a record below the logger's level costs one comparison.
 */
export interface Logger {
  /** Logs at debug level. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs at info level. */
  info(msg: string, fields?: LogFields): void;
  /** Logs at warn level. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs at error level. */
  error(msg: string, fields?: LogFields): void;
  /**
   * Returns a logger that adds `fields` to every record (after the parent's
   * bound fields; a key given again overrides the earlier value). The child
   * shares the parent's level and outputs.
   */
  child(fields: LogFields): Logger;
  /** True when a record at `level` would be written; use it to skip building costly fields. */
  enabled(level: LogLevel): boolean;
}

/** Where encoded lines go. `line` ends with "\n". Implementations must not throw. */
export interface LogSink {
  /** Accepts one complete line. */
  write(line: string): void;
}

/** A root logger, which owns its outputs. */
export interface RootLogger extends Logger {
  /**
   * Flushes and closes the file outputs this logger opened (stderr and stdout
   * are left open). Resolves when the files are closed; records logged
   * afterwards are dropped.
   */
  close(): Promise<void>;
}

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Records below this level are dropped. */
  readonly level: LogLevel;
  /**
   * etcd's `--log-outputs` targets: "default" and "stderr" mean standard
   * error, "stdout" standard output, anything else a file path opened once
   * for appending. Ignored when `sinks` is given. Defaults to ["default"].
   */
  readonly outputs?: readonly string[];
  /** Sinks to write to instead of `outputs` (tests, or a custom destination). */
  readonly sinks?: readonly LogSink[];
  /** Written as the `logger` key of every record when non-empty. */
  readonly name?: string;
  /** Clock for the `ts` key. Defaults to the real clock. */
  readonly now?: () => Date;
}

/** Keys the record itself uses; a field with one of these names is written as `<key>_`. */
const RESERVED_KEYS: ReadonlySet<string> = new Set(['level', 'ts', 'logger', 'caller', 'msg']);

/**
 * Converts a field value into something `JSON.stringify` writes faithfully:
 * - `bigint` → decimal string (JSON numbers cannot hold 64-bit ids);
 * - `Uint8Array` (and `Buffer`) → the text when it is valid UTF-8 without
 *   control characters, otherwise base64;
 * - `Error` → its message; `Date` → ISO-8601 string;
 * - non-finite numbers → "NaN", "Infinity", "-Infinity";
 * - `Map` → object, `Set` → array, arrays and plain objects recursively;
 * - functions and symbols → their `String()` form; a cycle → "[Circular]".
 * Strings, finite numbers, booleans and null are returned unchanged.
 */
export function encodeFieldValue(value: unknown): unknown {
  return encodeValue(value, new Set<object>());
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const CONTROL_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f]/;

function encodeBytes(bytes: Uint8Array): string {
  let text: string | undefined;
  try {
    text = utf8.decode(bytes);
  } catch {
    text = undefined;
  }
  if (text !== undefined && !CONTROL_CHARS.test(text)) return text;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function encodeValue(value: unknown, seen: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString(10);
    case 'undefined':
      return undefined;
    case 'function':
    case 'symbol':
      return String(value);
    case 'object':
      break;
  }
  if (value === null) return null;
  if (value instanceof Uint8Array) return encodeBytes(value);
  if (value instanceof Error) return value.message;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  const obj = value as object;
  if (seen.has(obj)) return '[Circular]';
  seen.add(obj);
  try {
    if (Array.isArray(obj)) return obj.map((item: unknown) => encodeValue(item, seen) ?? null);
    if (obj instanceof Set) return [...obj].map((item: unknown) => encodeValue(item, seen) ?? null);
    const out: Record<string, unknown> = {};
    const entries: Iterable<[unknown, unknown]> = obj instanceof Map ? obj.entries() : Object.entries(obj);
    for (const [key, item] of entries) {
      const encoded = encodeValue(item, seen);
      if (encoded !== undefined) out[typeof key === 'string' ? key : String(encodeValue(key, seen))] = encoded;
    }
    return out;
  } finally {
    seen.delete(obj);
  }
}

/** A sink that keeps lines in memory; for tests. `lines` holds each line without its newline. */
export interface MemorySink extends LogSink {
  /** Lines written so far, oldest first, without the trailing newline. Owned by the sink. */
  readonly lines: string[];
  /** The lines parsed as JSON objects. */
  records(): Record<string, unknown>[];
}

/** Creates a {@link MemorySink}. */
export function createMemorySink(): MemorySink {
  const lines: string[] = [];
  return {
    lines,
    write(line: string): void {
      lines.push(line.endsWith('\n') ? line.slice(0, -1) : line);
    },
    records(): Record<string, unknown>[] {
      return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

/** A sink over a writable stream. Write errors are reported once on stderr and then ignored. */
function streamSink(stream: Writable, label: string): LogSink {
  let failed = false;
  stream.on('error', (err: Error) => {
    if (failed) return;
    failed = true;
    process.stderr.write(`log output ${label} failed, dropping its records: ${err.message}\n`);
  });
  return {
    write(line: string): void {
      if (!failed) stream.write(line);
    },
  };
}

interface Outputs {
  readonly sinks: readonly LogSink[];
  readonly files: readonly Writable[];
}

function openOutputs(outputs: readonly string[]): Outputs {
  const sinks: LogSink[] = [];
  const files: Writable[] = [];
  const opened = new Set<string>();
  for (const target of outputs.length === 0 ? ['default'] : outputs) {
    const key = target === 'default' ? 'stderr' : target;
    if (opened.has(key)) continue;
    opened.add(key);
    if (key === 'stderr') {
      sinks.push(streamSink(process.stderr, 'stderr'));
    } else if (key === 'stdout') {
      sinks.push(streamSink(process.stdout, 'stdout'));
    } else {
      const file = createWriteStream(key, { flags: 'a' });
      files.push(file);
      sinks.push(streamSink(file, key));
    }
  }
  return { sinks, files };
}

interface CoreState {
  readonly rank: number;
  readonly sinks: readonly LogSink[];
  readonly name: string;
  readonly now: () => Date;
  closed: boolean;
}

function formatRecord(core: CoreState, level: LogLevel, msg: string, bound: LogFields, fields: LogFields | undefined): string {
  let caller: unknown = undefined;
  const extra: Record<string, unknown> = {};
  const addAll = (source: LogFields): void => {
    for (const key of Object.keys(source)) {
      const raw = source[key];
      if (key === 'caller' && typeof raw === 'string') {
        caller = raw;
        continue;
      }
      const encoded = encodeFieldValue(raw);
      const outKey = RESERVED_KEYS.has(key) ? `${key}_` : key;
      if (encoded === undefined) delete extra[outKey];
      else extra[outKey] = encoded;
    }
  };
  addAll(bound);
  if (fields !== undefined) addAll(fields);
  const head: Record<string, unknown> = { level, ts: core.now().toISOString() };
  if (core.name !== '') head['logger'] = core.name;
  if (caller !== undefined) head['caller'] = caller;
  head['msg'] = msg;
  return JSON.stringify(Object.assign(head, extra)) + '\n';
}

function makeLogger(core: CoreState, bound: LogFields): Logger {
  const emit = (level: LogLevel, msg: string, fields: LogFields | undefined): void => {
    if (LEVEL_RANK[level] < core.rank || core.closed) return;
    let line: string;
    try {
      line = formatRecord(core, level, msg, bound, fields);
    } catch (err) {
      // A field whose getter throws must not take the caller down with it.
      const reason = err instanceof Error ? err.message : String(err);
      line = JSON.stringify({ level, ts: core.now().toISOString(), msg, logError: `fields not encodable: ${reason}` }) + '\n';
    }
    for (const sink of core.sinks) sink.write(line);
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => makeLogger(core, { ...bound, ...fields }),
    enabled: (level) => !core.closed && LEVEL_RANK[level] >= core.rank,
  };
}

/**
 * Creates a root logger. File outputs are opened here (once each, in append
 * mode, asynchronously: an unwritable path is reported on stderr when the
 * open fails, not thrown). Writes go through `stream.write` and never wait
 * for the disk.
 */
export function createLogger(options: LoggerOptions): RootLogger {
  const outputs: Outputs =
    options.sinks !== undefined ? { sinks: options.sinks, files: [] } : openOutputs(options.outputs ?? ['default']);
  const core: CoreState = {
    rank: LEVEL_RANK[options.level],
    sinks: outputs.sinks,
    name: options.name ?? '',
    now: options.now ?? ((): Date => new Date()),
    closed: false,
  };
  const logger = makeLogger(core, {});
  return {
    ...logger,
    close(): Promise<void> {
      core.closed = true;
      return Promise.all(
        outputs.files.map(
          (file) =>
            new Promise<void>((resolve) => {
              if (file.destroyed || file.writableFinished) {
                resolve();
                return;
              }
              file.once('close', () => resolve());
              file.once('error', () => resolve());
              file.end();
            }),
        ),
      ).then(() => undefined);
    },
  };
}

/** A logger that drops everything; `child` returns the same logger. */
export const nullLogger: Logger = Object.freeze({
  debug(): void {},
  info(): void {},
  warn(): void {},
  error(): void {},
  child(): Logger {
    return nullLogger;
  },
  enabled(): boolean {
    return false;
  },
});
