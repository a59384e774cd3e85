// What a Node user would pick instead: the same handler on plain node:http, a 2-process
// cluster on PORT, behind nginx proxy_pass with upstream keepalive.
import cluster from 'node:cluster';
import http from 'node:http';

const big = 'x'.repeat(64 * 1024);
if (cluster.isPrimary) {
  for (let i = 0; i < 2; i++) cluster.fork();
} else {
  http
    .createServer((req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.end(req.url === '/64k' ? big : 'Hello, world!\n');
    })
    .listen(Number(process.env.PORT), '127.0.0.1');
}
