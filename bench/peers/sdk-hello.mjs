// The SDK as a user runs it: the built package (dist), node:http-style handler, fd 0.
import { createServer } from '../../dist/worker-sdk/index.js';

const big = 'x'.repeat(64 * 1024);
createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(req.url === '/64k' ? big : 'Hello, world!\n');
}).listen();
