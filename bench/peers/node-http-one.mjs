// The same handler on plain node:http, one process on PORT (the CPU benchmark's reference).
import http from 'node:http';

http
  .createServer((_req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end('Hello, world!\n');
  })
  .listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
