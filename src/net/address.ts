import { isIP } from 'node:net';
import { UserError } from './errors.js';

export interface TcpAddress {
  readonly kind: 'tcp';
  readonly host: string;
  readonly port: number;
}

export interface UnixAddress {
  readonly kind: 'unix';
  readonly path: string;
}

export type ListenAddress = TcpAddress | UnixAddress;

/** `127.0.0.1:9000`, `[::1]:9000`, `/run/app.sock`, for messages. */
export function formatAddress(address: ListenAddress): string {
  if (address.kind === 'unix') return address.path;
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** A TCP port from user input: an integer 1-65535 (0 allowed only when `allowZero`). */
export function parsePort(text: string, allowZero = false): number {
  if (!/^\d+$/.test(text)) throw new UserError(`invalid port '${text}': not a number`, 2);
  const port = Number(text);
  if (port > 65535 || (port === 0 && !allowZero)) {
    throw new UserError(`invalid port '${text}': must be 1-65535`, 2);
  }
  return port;
}

/** `[host:]port`, `[v6]:port`; the host defaults to `defaultHost`. */
export function parseHostPort(text: string, defaultHost = '127.0.0.1'): TcpAddress {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed) return { kind: 'tcp', host: bracketed[1]!, port: parsePort(bracketed[2]!) };
  const colon = text.lastIndexOf(':');
  if (colon < 0) return { kind: 'tcp', host: defaultHost, port: parsePort(text) };
  const host = text.slice(0, colon);
  if (host.includes(':')) throw new UserError(`invalid address '${text}': write IPv6 as [addr]:port`, 2);
  return { kind: 'tcp', host: host || defaultHost, port: parsePort(text.slice(colon + 1)) };
}
