import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fcgiGet, fcgiLoop, waitServing } from '../helpers/fcgi.js';
import {
  hostPid,
  imagesSkipReason,
  inside,
  podman,
  podmanRun,
  removePodmanConf,
  uniqueName,
} from '../helpers/podman.js';
import { ROOT, until } from '../helpers/processes.js';

// The shipped units under a real systemd (PID 1 of a podman container of Debian 12), with the
// package installed as a user installs it: `npm install -g` of the tarball `npm pack` makes.
// The host reaches the unit's socket, /run/fcgi-prefork.sock in the container, through
// /proc/<pid>/root: no port is published, nothing listens outside the container.
const IMAGE = 'localhost/deb12-node:26';
const skip = imagesSkipReason([IMAGE]);
const UNITS = join(ROOT, 'examples', 'systemd');
const SERVICE = 'fcgi-prefork.service';
const WORKERS = 2;

/** The app a user would put in WorkingDirectory: the SDK from its own node_modules. */
const APP = `import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'fcgi-prefork/worker';

const attempt = (f) => {
  try {
    f();
    return 'ok';
  } catch (error) {
    return error.code;
  }
};
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  if (url.pathname === '/hardening') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({
      status: readFileSync('/proc/self/status', 'utf8'),
      writeUsr: attempt(() => writeFileSync('/usr/local/probe', '')),
      readHome: attempt(() => readdirSync('/home')),
      tmp: readdirSync('/tmp'),
    }));
    return;
  }
  const ms = Number(url.searchParams.get('sleep') ?? 0);
  setTimeout(() => res.end(\`hello from \${process.pid} uid \${process.getuid()}\\n\`), ms);
});
server.listen();
console.log(\`app up as uid \${process.getuid()}\`);
`;

/**
 * The shipped service with the edits the README names, and no others: ExecStart's binary where
 * `npm install -g` put it, and the number of workers (two: the test machine has two cores).
 */
function editedService(binary: string): string {
  const shipped = readFileSync(join(UNITS, SERVICE), 'utf8');
  const edited = shipped.replace(
    /^ExecStart=\/usr\/bin\/fcgi-prefork --workers 4 /m,
    `ExecStart=${binary} --workers ${WORKERS} `,
  );
  expect(edited).not.toBe(shipped);
  return edited;
}

function npmPack(destination: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'npm',
      ['pack', '--silent', '--pack-destination', destination],
      { cwd: ROOT, timeout: 180_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`npm pack: ${error.message}\n${stderr}`));
        else resolve(join(destination, stdout.trim().split('\n').at(-1)!));
      },
    );
  });
}

const systemctl = (container: string, ...args: string[]) => inside(container, ['systemctl', ...args]);

async function show(container: string, property: string): Promise<string> {
  return (await systemctl(container, 'show', '--value', '-p', property, SERVICE)).trim();
}

/** A process's /proc/<pid>/status fields, read inside the container (pids are the container's). */
async function procStatus(container: string, pid: string): Promise<Record<string, string>> {
  const text = await inside(container, ['cat', `/proc/${pid}/status`]);
  return Object.fromEntries(
    text.split('\n').map((line) => [line.split(':')[0]!, line.split(':\t')[1] ?? '']),
  );
}

/** The starter's pid and its children's, in the container. */
async function poolPids(container: string): Promise<{ main: string; workers: string[] }> {
  const main = await show(container, 'MainPID');
  const children = await inside(container, ['cat', `/proc/${main}/task/${main}/children`]);
  return { main, workers: children.trim().split(/\s+/).filter(Boolean) };
}

/** Requests in flight in the pool, from `fcgi-prefork status --json` on the control socket. */
async function activeRequests(container: string): Promise<number> {
  const status = JSON.parse(
    await inside(container, [
      'fcgi-prefork',
      'status',
      '--json',
      '--control',
      '/run/fcgi-prefork/control.sock',
    ]),
  ) as { workers: { active?: number }[] };
  return status.workers.reduce((sum, w) => sum + (w.active ?? 0), 0);
}

describe.skipIf(skip)(
  'systemd as PID 1: the shipped units, the package installed with npm install -g',
  () => {
    const name = uniqueName('systemd');
    const dir = mkdtempSync(join(tmpdir(), 'fcgi-systemd-pid1-'));
    let target: { path: string };
    let uid = '';

    beforeAll(async () => {
      const tarball = await npmPack(dir);
      // Hardening (ProtectSystem=, PrivateTmp= …) makes mount namespaces: systemd needs
      // CAP_SYS_ADMIN in the container for them, as on a machine.
      await podman([
        'run',
        '-d',
        '--name',
        name,
        '--systemd=always',
        '--cap-add',
        'SYS_ADMIN',
        IMAGE,
        '/sbin/init',
      ]);
      // Until systemd answers on its bus; then every unit of boot has started.
      let state = '';
      await until(
        async () => {
          state = (await podmanRun(['exec', name, 'systemctl', 'is-system-running', '--wait'])).stdout.trim();
          return state !== '' && state !== 'offline';
        },
        60_000,
        'systemd to boot',
      );
      expect(state).toBe('running');
      await podman(['cp', tarball, `${name}:/tmp/fcgi-prefork.tgz`]);
      await inside(
        name,
        ['npm', 'install', '--global', '--no-audit', '--no-fund', '/tmp/fcgi-prefork.tgz'],
        240_000,
      );
      const binary = (await inside(name, ['sh', '-c', 'command -v fcgi-prefork'])).trim();
      // The app, with the SDK as its dependency, from the same tarball.
      writeFileSync(join(dir, 'server.js'), APP);
      writeFileSync(join(dir, 'package.json'), '{ "private": true, "type": "module" }\n');
      await inside(name, ['mkdir', '-p', '/srv/app']);
      await podman(['cp', join(dir, 'server.js'), `${name}:/srv/app/server.js`]);
      await podman(['cp', join(dir, 'package.json'), `${name}:/srv/app/package.json`]);
      await inside(
        name,
        ['sh', '-c', 'cd /srv/app && npm install --no-audit --no-fund /tmp/fcgi-prefork.tgz'],
        240_000,
      );
      // The units: the socket as shipped, the service with the documented edits.
      writeFileSync(join(dir, SERVICE), editedService(binary));
      await podman([
        'cp',
        join(UNITS, 'fcgi-prefork.socket'),
        `${name}:/etc/systemd/system/fcgi-prefork.socket`,
      ]);
      await podman(['cp', join(dir, SERVICE), `${name}:/etc/systemd/system/${SERVICE}`]);
      // Seen by root here; ProtectHome= and PrivateTmp= must hide them from the service.
      await inside(name, ['sh', '-c', 'mkdir -p /home/someone && touch /tmp/outside-the-service']);
      await systemctl(name, 'daemon-reload');
      await systemctl(name, 'enable', 'fcgi-prefork.socket', SERVICE);
      await systemctl(name, 'start', 'fcgi-prefork.socket');
      target = { path: `/proc/${await hostPid(name)}/root/run/fcgi-prefork.sock` };
    }, 600_000);

    afterAll(async () => {
      await podmanRun(['rm', '--force', '--time', '0', name]);
      removePodmanConf();
      rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it('installs from the tarball: fcgi-prefork on PATH, the units verify', async () => {
      expect((await inside(name, ['fcgi-prefork', '--version'])).trim()).toMatch(
        /^fcgi-prefork \d+\.\d+\.\d+/,
      );
      const verify = await podmanRun([
        'exec',
        name,
        'systemd-analyze',
        'verify',
        '/etc/systemd/system/fcgi-prefork.socket',
        `/etc/systemd/system/${SERVICE}`,
      ]);
      expect(verify.stderr).toBe('');
      expect(verify.code).toBe(0);
    });

    it('the first request activates the service; Type=notify reaches active with the STATUS= line', async () => {
      expect(await show(name, 'ActiveState')).toBe('inactive');
      expect((await systemctl(name, 'is-active', 'fcgi-prefork.socket')).trim()).toBe('active');
      expect(await fcgiGet(target, '/', 30_000)).toMatch(/^hello from \d+ uid \d+/);
      // systemd marks a Type=notify service active only once READY=1 has come.
      await until(async () => (await show(name, 'ActiveState')) === 'active', 20_000, 'active');
      const ready = `${WORKERS} workers ready (generation 1) on fd 3 (socket activation)`;
      expect(await show(name, 'StatusText')).toBe(ready);
      const status = await podmanRun(['exec', name, 'systemctl', 'status', '--no-pager', SERVICE]);
      expect(status.stdout).toContain(`Status: "${ready}"`);
      await waitServing(target, WORKERS);
    });

    it('starter and workers run as the dynamic user, never uid 0, with the unit’s hardening', async () => {
      uid = await show(name, 'UID');
      expect(Number(uid)).toBeGreaterThan(0);
      const { main, workers } = await poolPids(name);
      expect(workers).toHaveLength(WORKERS);
      for (const pid of [main, ...workers]) {
        const status = await procStatus(name, pid);
        expect(status.Uid, pid).toBe(`${uid}\t${uid}\t${uid}\t${uid}`);
        expect(status.Gid!.split('\t')).not.toContain('0');
        expect(status.NoNewPrivs).toBe('1'); // NoNewPrivileges=yes
        expect(status.CapEff).toBe('0000000000000000');
        expect(status.CapBnd).toBe('0000000000000000'); // CapabilityBoundingSet=
        expect(status.Seccomp).toBe('2'); // SystemCallArchitectures=, RestrictAddressFamilies= …
      }
      // What the mount namespace does, seen from a worker.
      const seen = JSON.parse(await fcgiGet(target, '/hardening')) as {
        writeUsr: string;
        readHome: string;
        tmp: string[];
      };
      expect(seen.writeUsr).toBe('EROFS'); // ProtectSystem=strict
      expect(seen.readHome).toBe('EACCES'); // ProtectHome=yes
      expect(seen.tmp).not.toContain('outside-the-service'); // PrivateTmp=yes
    });

    it('journalctl has the workers’ lines, prefixed with their slot and pid', async () => {
      const { workers } = await poolPids(name);
      const journal = await inside(name, ['journalctl', '--no-pager', '-o', 'cat', '-u', SERVICE]);
      for (const [slot, pid] of workers.entries())
        expect(journal).toContain(`[worker ${slot + 1} pid ${pid}] app up as uid ${uid}`);
    });

    it('under load, 0 failed requests: systemctl reload (rolling), then systemctl restart (systemd holds the socket)', {
      timeout: 180_000,
    }, async () => {
      // Requests sent so far: each phase waits for more of them, so every step runs under load.
      let sent = 0;
      let done = false;
      const load = fcgiLoop(
        target,
        4,
        () => {
          sent++;
          return done;
        },
        20_000,
      );
      const more = async (n: number) => {
        const mark = sent;
        await until(() => sent >= mark + n, 30_000, `${n} more requests`);
      };
      try {
        await more(100);
        const first = await poolPids(name);
        await systemctl(name, 'reload', SERVICE);
        // systemd 252 returns once SIGHUP is sent: the STATUS= line says when the reload is done.
        const ready2 = `${WORKERS} workers ready (generation 2) on fd 3 (socket activation)`;
        await until(async () => (await show(name, 'StatusText')) === ready2, 60_000, 'generation 2 ready');
        const reloaded = await poolPids(name);
        expect(reloaded.main).toBe(first.main);
        for (const pid of reloaded.workers) expect(first.workers).not.toContain(pid);
        await more(100);

        // Type=notify: restart returns once the new starter has sent READY=1.
        await systemctl(name, 'restart', SERVICE);
        const restarted = await poolPids(name);
        expect(restarted.main).not.toBe(first.main);
        expect(await show(name, 'ActiveState')).toBe('active');
        expect(await show(name, 'StatusText')).toBe(
          `${WORKERS} workers ready (generation 1) on fd 3 (socket activation)`,
        );
        await more(100);
      } finally {
        done = true;
      }
      const result = await load;
      expect(Object.fromEntries(result.failures)).toEqual({});
      expect(result.ok).toBe(result.sent);
      expect(result.sent).toBeGreaterThan(0);
    });

    it('systemctl stop answers the requests in flight', { timeout: 90_000 }, async () => {
      const slow = Array.from({ length: 4 }, () => fcgiGet(target, '/?sleep=3000', 30_000));
      // In the workers, not in the socket's backlog (which would start the service again).
      await until(async () => (await activeRequests(name)) === 4, 10_000, '4 requests in flight');
      await systemctl(name, 'stop', SERVICE);
      for (const body of await Promise.all(slow)) expect(body).toMatch(/^hello from \d+ uid /);
      expect(await show(name, 'ActiveState')).toBe('inactive');
      expect(await show(name, 'Result')).toBe('success');
      const journal = await inside(name, ['journalctl', '--no-pager', '-o', 'cat', '-u', SERVICE]);
      expect(journal).toMatch(/SIGTERM: stopping/);
    });

    it('Type=notify-reload: known from systemd 253 on, ignored by this one when older', async () => {
      const version = Number(/^systemd (\d+)/.exec(await systemctl(name, '--version'))![1]);
      const unit = '/etc/systemd/system/notify-reload-probe.service';
      await inside(name, [
        'sh',
        '-c',
        `printf '[Service]\\nType=notify-reload\\nExecStart=/bin/true\\n' > ${unit}`,
      ]);
      const verify = await podmanRun(['exec', name, 'systemd-analyze', 'verify', unit]);
      if (version < 253)
        expect(verify.stderr).toMatch(/Failed to parse service type, ignoring: notify-reload/);
      else expect(verify.stderr).not.toMatch(/notify-reload/);
    });
  },
);
