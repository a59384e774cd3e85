// The smallest fcgi-prefork worker: `npm start` runs a supervised pool of it.
// Under a starter it accepts on fd 0; with PORT set it listens on 127.0.0.1:$PORT by itself.
import { createServer } from '../worker-sdk/index.js';

const server = createServer((req, res) => {
  if (req.url === '/echo' && req.method === 'POST') {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ bytes }));
    });
    return;
  }
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(`Hello from fcgi-prefork worker ${process.env.FCGI_WORKER_ID ?? '-'} (pid ${process.pid})\n`);
});

if (process.env.PORT) server.listen(Number(process.env.PORT), '127.0.0.1');
else server.listen();
