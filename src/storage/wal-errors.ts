/** Errors raised by the write-ahead log. */

/** Base class of every error the WAL raises on purpose. */
export class WalError extends Error {
  override readonly name: string = 'WalError';
}

/**
 * The WAL's files are damaged in a way recovery must not paper over: a bad record in a segment
 * other than the last, a bad segment header, a missing segment in the sequence, a broken CRC
 * chain between segments, or a record whose checksum is right but whose contents are invalid.
 * `file` is the segment's path and `offset` the byte offset of the bad record.
 */
export class WalCorruptError extends WalError {
  override readonly name = 'WalCorruptError';

  /** @param file segment path; @param offset byte offset within it; @param reason what is wrong */
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`wal: corrupt segment ${file} at offset ${offset}: ${reason}`);
  }
}

/**
 * The WAL does not hold the entries that must follow the requested snapshot index (they were
 * released behind a newer snapshot, or the log was replaced by one): the caller's snapshot is
 * too old to recover from this log.
 */
export class WalGapError extends WalError {
  override readonly name = 'WalGapError';

  /** @param after the snapshot index replay starts after; @param firstIndex the first entry above it that the WAL holds */
  constructor(
    readonly after: number,
    readonly firstIndex: number,
  ) {
    super(`wal: entries after index ${after} start at ${firstIndex}; entries ${after + 1}..${firstIndex - 1} are missing`);
  }
}

/** A write, snapshot marker or release was requested after `close()`. */
export class WalClosedError extends WalError {
  override readonly name = 'WalClosedError';

  constructor() {
    super('wal: closed');
  }
}

/**
 * An earlier write or fsync failed, so the state of the file is unknown and the WAL accepts no
 * more writes (retrying an fsync after a failure can silently lose data). `cause` is the
 * original failure. The process should stop and recover by reopening.
 */
export class WalFailedError extends WalError {
  override readonly name = 'WalFailedError';

  /** @param cause the original I/O failure */
  constructor(cause: unknown) {
    super(`wal: unusable after an earlier write failure: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
