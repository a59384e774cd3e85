// CPU time per request, the worker's and nginx's apart: one worker behind nginx, wrk for a
// few seconds, utime+stime from /proc before and after. Unlike req/s this hardly moves with
// the machine's noise, so it shows where a throughput ratio comes from.
//   npm run bench:cpu [-- --quick] [-- --json file] [-- --only sdk,node:http] [-- --keep-conn on|off]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForListen } from '../test/helpers/net.js';
import { childrenOf, start } from '../test/helpers/processes.js';
import { argValue, jsonTarget, printTable } from './lib/measure.js';
import { requirePeers } from './lib/peers.js';
import {
  buildGoPeer,
  buildLibfcgiPeer,
  buildOnce,
  nginxInFront,
  PEERS_DIR,
  seconds,
  sleep,
  startPool,
  stopEverything,
} from './lib/setup.js';
import { wrk } from './lib/wrk.js';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

function cpuMicros(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks / TICKS) * 1e6;
}

interface Kind {
  readonly name: string;
  readonly command: string[];
  /** Plain HTTP behind proxy_pass instead of FastCGI. */
  readonly http?: boolean;
}

interface Row {
  kind: string;
  keepConn: boolean;
  requests: number;
  rps: number;
  workerMicros: number;
  nginxMicros: number;
}

async function measure(kind: Kind, keepConn: boolean, duration: number): Promise<Row> {
  const port = await freePort();
  // node:http's own server, one process, as the FastCGI workers are one here.
  const pool = kind.http
    ? start(process.execPath, [join(PEERS_DIR, 'node-http-one.mjs')], {
        env: { ...process.env, PORT: String(port) },
      })
    : startPool(['-p', String(port), '-N', '1', '--allow-root', '--', ...kind.command]);
  try {
    await waitForListen({ host: '127.0.0.1', port });
    await sleep(800);
    const nginx = await nginxInFront(port, { keepConn, ...(kind.http ? { http: true } : {}) });
    try {
      const url = `${nginx.url}/`;
      wrk(url, { connections: 16, seconds: 1 }); // warm-up
      const workers = kind.http ? [pool.pid] : await childrenOf(pool.pid);
      const w0 = cpuMicros(workers);
      const n0 = cpuMicros([nginx.pid]);
      const r = wrk(url, { connections: 16, seconds: duration });
      const requests = Math.max(1, r.requests);
      return {
        kind: kind.name,
        keepConn,
        requests: r.requests,
        rps: r.rps,
        workerMicros: (cpuMicros(workers) - w0) / requests,
        nginxMicros: (cpuMicros([nginx.pid]) - n0) / requests,
      };
    } finally {
      await nginx.stop();
    }
  } finally {
    await pool.stop();
  }
}

async function main(): Promise<void> {
  requirePeers(['wrk', 'nginx', 'go', 'gcc']);
  buildOnce();
  const duration = seconds(4);
  const kinds: Kind[] = [
    { name: 'SDK createServer', command: [join(PEERS_DIR, 'sdk-hello.mjs')] },
    { name: 'node:http (proxy_pass)', command: [], http: true },
    { name: 'node-fastcgi', command: [process.execPath, join(PEERS_DIR, 'node-fastcgi-hello.cjs')] },
    { name: 'Go net/http/fcgi', command: [buildGoPeer()] },
    { name: 'libfcgi C', command: [buildLibfcgiPeer()] },
  ];
  // --only: a comma list of name fragments, to measure a few kinds while working on one.
  const only = argValue('--only')?.toLowerCase().split(',');
  const keepConnArg = argValue('--keep-conn');
  const keepConns = keepConnArg ? [keepConnArg === 'on'] : [true, false];
  const rows: Row[] = [];
  for (const keepConn of keepConns)
    for (const kind of kinds) {
      if (only && !only.some((part) => kind.name.toLowerCase().includes(part))) continue;
      // node-fastcgi stalls with keep-conn (see the workers benchmark).
      if (keepConn && kind.name === 'node-fastcgi') continue;
      process.stderr.write(`measuring ${kind.name}, keep-conn ${keepConn ? 'on' : 'off'}…\n`);
      rows.push(await measure(kind, keepConn, duration));
    }
  console.log(
    `\none worker behind one nginx process; wrk -t2 -c16 -d${duration}s; CPU from /proc/<pid>/stat\n`,
  );
  printTable([
    ['worker', 'keep-conn', 'requests', 'req/s', 'worker µs/req', 'nginx µs/req'],
    ...rows.map((r) => [
      r.kind,
      r.keepConn ? 'on' : 'off',
      String(r.requests),
      r.rps.toFixed(0),
      r.workerMicros.toFixed(1),
      r.nginxMicros.toFixed(1),
    ]),
  ]);
  const json = jsonTarget();
  if (json) writeFileSync(json, `${JSON.stringify({ bench: 'cpu', duration, rows }, null, 2)}\n`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(stopEverything);
