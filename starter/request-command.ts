import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { buildCgiParams } from '../src/client/cgi-params.js';
import { createClient } from '../src/client/client.js';
import type { Target } from '../src/client/connection.js';
import { FastCgiClientError } from '../src/client/errors.js';
import { parseHostPort } from '../src/net/address.js';
import { UserError } from '../src/net/errors.js';
import { FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS } from '../src/protocol/index.js';
import { last, type OptionSpec, parseArgs, parseSeconds } from './args.js';

export const REQUEST_USAGE = `Usage: fcgi-prefork request [options] <uri-or-script>

Sends one FastCGI request and prints the response, like curl (a friendlier cgi-fcgi).
<uri-or-script> is a request URI (/index.php?x=1) or the path of an existing script file,
which becomes SCRIPT_FILENAME.

  --connect <host:port>      server address (default 127.0.0.1:9000)
  --socket <path>            server unix socket
  -X, --method <METHOD>      request method (default GET, or POST with --data)
  -H, --header 'Name: value' request header (repeatable), sent as HTTP_NAME
  --data <text|@file|->      request body: text, a file, or standard input
  --param NAME=VALUE         a CGI param, overriding the defaults (repeatable)
  --document-root <dir>      DOCUMENT_ROOT; SCRIPT_FILENAME is dir + the URI's path
  --script-filename <path>   SCRIPT_FILENAME
  -i, --include              print the status line and headers too
  --get-values               print FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS and exit
  --timeout <seconds>        give up after this long (default 30)
  -h, --help                 this help

Exit status: 0 for a 2xx or 3xx response, 22 for any other status (as curl -f),
1 when the server cannot be reached or fails, 2 for a bad command line.
`;

export const SPECS: readonly OptionSpec[] = [
  { key: 'connect', long: ['connect'], value: true },
  { key: 'socket', long: ['socket'], value: true },
  { key: 'method', short: ['X'], long: ['method', 'request'], value: true },
  { key: 'header', short: ['H'], long: ['header'], value: true },
  { key: 'data', short: ['d'], long: ['data'], value: true },
  { key: 'param', long: ['param'], value: true },
  { key: 'document-root', long: ['document-root'], value: true },
  { key: 'script-filename', long: ['script-filename'], value: true },
  { key: 'include', short: ['i'], long: ['include'], value: false },
  { key: 'get-values', long: ['get-values'], value: false },
  { key: 'timeout', long: ['timeout'], value: true },
  { key: 'help', short: ['h'], long: ['help'], value: false },
];

function readData(spec: string): Buffer {
  if (spec === '-') return readFileSync(0);
  if (spec.startsWith('@')) {
    try {
      return readFileSync(spec.slice(1));
    } catch (e) {
      throw new UserError(`cannot read ${spec.slice(1)}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
  }
  return Buffer.from(spec);
}

export async function runRequestCommand(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, SPECS);
  if (args.flags.has('help')) {
    process.stdout.write(REQUEST_USAGE);
    return 0;
  }
  const connect = last(args, 'connect');
  const socket = last(args, 'socket');
  if (connect && socket) throw new UserError('give --connect or --socket, not both', 2);
  const target: Target = socket
    ? { path: socket }
    : (() => {
        const address = parseHostPort(connect ?? '127.0.0.1:9000');
        return { host: address.host, port: address.port };
      })();
  const timeoutMs = parseSeconds(last(args, 'timeout') ?? '30', 'timeout') * 1000;
  const client = createClient(target, {
    connections: 1,
    keepConn: false,
    multiplex: false,
    connectTimeout: timeoutMs,
    responseTimeout: timeoutMs,
  });
  try {
    if (args.flags.has('get-values')) {
      if (args.rest.length > 0) throw new UserError(`unexpected argument '${args.rest[0]}'`, 2);
      const values = await client.getValues([FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS]);
      for (const name of [FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS]) {
        process.stdout.write(`${name}=${values[name] ?? '(not answered)'}\n`);
      }
      return 0;
    }
    if (args.rest.length !== 1)
      throw new UserError(
        args.rest.length === 0 ? 'no URI or script given' : `unexpected argument '${args.rest[1]}'`,
        2,
      );
    const target0 = args.rest[0]!;
    let url = target0;
    let scriptFilename = last(args, 'script-filename');
    if (!target0.startsWith('/') || (existsSync(target0) && statSync(target0).isFile())) {
      if (!existsSync(target0))
        throw new UserError(`no such script: ${target0} (give a URI starting with /)`, 2);
      scriptFilename ??= resolve(target0);
      url = `/${basename(target0)}`;
    }
    const headers: [string, string][] = [];
    for (const header of args.values.get('header') ?? []) {
      const colon = header.indexOf(':');
      if (colon <= 0) throw new UserError(`invalid header '${header}': expected 'Name: value'`, 2);
      headers.push([header.slice(0, colon).trim(), header.slice(colon + 1).trim()]);
    }
    const dataSpec = last(args, 'data');
    const body = dataSpec !== undefined ? readData(dataSpec) : undefined;
    if (body && !headers.some(([n]) => n.toLowerCase() === 'content-type')) {
      headers.push(['Content-Type', 'application/x-www-form-urlencoded']);
    }
    if (body) headers.push(['Content-Length', String(body.length)]);
    if (!headers.some(([n]) => n.toLowerCase() === 'host')) headers.push(['Host', 'localhost']);
    const params = buildCgiParams({
      method: last(args, 'method') ?? (body ? 'POST' : 'GET'),
      url,
      headers,
      remoteAddress: '127.0.0.1',
      serverName: 'localhost',
      scriptFilename,
      documentRoot: last(args, 'document-root') ?? process.cwd(),
    });
    for (const param of args.values.get('param') ?? []) {
      const eq = param.indexOf('=');
      if (eq <= 0) throw new UserError(`invalid param '${param}': expected NAME=VALUE`, 2);
      params[param.slice(0, eq)] = param.slice(eq + 1);
    }
    const response = await client.request({ params, ...(body ? { body } : {}) });
    if (args.flags.has('include')) {
      let head = `HTTP/1.1 ${response.status} ${response.statusText}`.trimEnd();
      head += '\r\n';
      for (const [name, value] of Object.entries(response.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
      }
      process.stdout.write(`${head}\r\n`);
    }
    for await (const chunk of response.body) {
      if (!process.stdout.write(chunk as Buffer)) await new Promise((r) => process.stdout.once('drain', r));
    }
    const stderr = await response.stderr;
    if (stderr) process.stderr.write(stderr);
    return response.status < 400 ? 0 : 22;
  } catch (err) {
    if (err instanceof FastCgiClientError) throw new UserError(err.message);
    throw err;
  } finally {
    client.close();
  }
}
