// The smallest fcgi-prefork worker, with plain node:http-style (req, res): `npm start` runs a
// supervised pool of it behind the starter's HTTP front.
//   under a starter:  fcgi-prefork -p 9000 -N 2 examples/hello.ts   (accepts on fd 0)
//   by itself:        PORT=9000 tsx examples/hello.ts                (listens on 127.0.0.1:9000)
// Routes: GET / (hello), POST /echo (size and SHA-256 of the body), GET /stream (chunks over time),
// GET /status/<code> (that status, with two Set-Cookie headers: what a front must pass on).
import { createHash } from 'node:crypto';
import { createServer } from '../worker-sdk/index.js';

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/echo') {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
    });
    return;
  }
  if (req.url?.startsWith('/stream')) {
    const count = Number(new URL(req.url, 'http://x').searchParams.get('n') ?? 5);
    // Tells nginx to pass each chunk on as it comes instead of buffering the response.
    res.setHeader('X-Accel-Buffering', 'no');
    res.setHeader('Content-Type', 'text/plain');
    let i = 0;
    const timer = setInterval(() => {
      res.write(`chunk ${i}\n`);
      if (++i >= count) {
        clearInterval(timer);
        res.end();
      }
    }, 20);
    res.on('close', () => clearInterval(timer));
    return;
  }
  const status = /^\/status\/(\d{3})$/.exec(req.url ?? '');
  if (status) {
    res.writeHead(Number(status[1]), {
      'Content-Type': 'text/plain',
      'Set-Cookie': ['a=1; Path=/', 'b=2; Path=/'],
    });
    res.end(`status ${status[1]}\n`);
    return;
  }
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(`Hello from fcgi-prefork worker ${process.env.FCGI_WORKER_ID ?? '-'} (pid ${process.pid})\n`);
});

if (process.env.PORT) server.listen(Number(process.env.PORT), '127.0.0.1');
else server.listen();
