// node-fastcgi (npm), the usual Node FastCGI server; listen() with no port accepts on fd 0.
const fcgi = require('node-fastcgi');
const big = 'x'.repeat(64 * 1024);
fcgi
  .createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(req.url === '/64k' ? big : 'Hello, world!\n');
  })
  .listen();
