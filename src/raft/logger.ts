/** Structured logging for the core: the driver injects a sink; the core never logs globally. */

/** Severity of a log record. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A structured log sink. `fields` values are plain data (numbers, strings, bigints, booleans). */
export type RaftLogger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** A logger that discards everything. */
export const discardLogger: RaftLogger = () => undefined;
