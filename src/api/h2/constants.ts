/**
 * Numbers of HTTP/2 (RFC 9113) and gRPC that the native server uses: frame types and flags,
 * error codes, settings identifiers, protocol limits and gRPC status codes. (Defined here rather
 * than re-exported, so hot paths read plain module properties.)
 */

/** The client connection preface: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (24 octets). */
export const CLIENT_PREFACE: Buffer = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Frame types (RFC 9113 §6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags (their meaning depends on the frame type). */
export const FrameFlag = {
  /** DATA, HEADERS: the sender's last frame on the stream. */
  END_STREAM: 0x1,
  /** SETTINGS, PING: acknowledgement. */
  ACK: 0x1,
  /** HEADERS, CONTINUATION: the header block ends with this frame. */
  END_HEADERS: 0x4,
  /** DATA, HEADERS: a pad length octet precedes the payload and padding follows it. */
  PADDED: 0x8,
  /** HEADERS: stream dependency and weight (5 octets) precede the header block fragment. */
  PRIORITY: 0x20,
} as const;

/** HTTP/2 error codes (RFC 9113 §7), as carried by RST_STREAM and GOAWAY. */
export const H2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** SETTINGS parameter identifiers (RFC 9113 §6.5.2). */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Initial flow-control window of a connection and of each stream until SETTINGS change it (octets). */
export const DEFAULT_WINDOW_SIZE = 65535;

/** Largest flow-control window (2^31-1 octets); a window beyond it is a FLOW_CONTROL_ERROR. */
export const MAX_WINDOW_SIZE = 0x7fffffff;

/** Smallest legal SETTINGS_MAX_FRAME_SIZE, and its initial value (octets). */
export const MIN_MAX_FRAME_SIZE = 16384;
/** Largest legal SETTINGS_MAX_FRAME_SIZE (2^24-1 octets). */
export const MAX_MAX_FRAME_SIZE = 0xffffff;

/** gRPC status codes (the numbers of grpc's `codes` package). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** Size of the length prefix of a gRPC message: compressed flag (1) + big-endian length (4). */
export const GRPC_PREFIX_SIZE = 5;
