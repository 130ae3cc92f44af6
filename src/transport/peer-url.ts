/** Peer URL parsing: the transport dials plain `http://host:port` peer URLs over TCP. */

/** A dialable peer address, with the URL it came from (for logs). */
export interface PeerAddress {
  url: string;
  host: string;
  port: number;
}

/**
 * Parses one advertised peer URL. Accepts `http://host:port` (an IPv6 host in brackets) and a
 * bare `host:port`; returns undefined for anything else (other schemes, a path, no port), since
 * TLS and non-TCP peers are not supported yet.
 */
export function parsePeerUrl(raw: string): PeerAddress | undefined {
  const text = raw.includes('://') ? raw : `http://${raw}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' || u.port === '' || u.username !== '' || u.password !== '') return undefined;
  if (u.pathname !== '/' && u.pathname !== '') return undefined;
  if (u.search !== '' || u.hash !== '') return undefined;
  const port = Number(u.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  let host = u.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') return undefined;
  return { url: raw, host, port };
}
