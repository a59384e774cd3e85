// An ordinary Express app: the only FastCGI-specific line is `createServer(app)` in place of
// `http.createServer(app)`.
//   under a starter:  fcgi-prefork -p 9000 -N 4 examples/express-app.ts   (accepts on fd 0)
//   by itself:        PORT=9000 tsx examples/express-app.ts                (listens on 127.0.0.1:9000)
import express from 'express';
import { createServer } from '../worker-sdk/index.js';

const app = express();
app.use(express.json());

app.get('/', (_req, res) => {
  res.type('text/plain').send(`Hello from Express on FastCGI (pid ${process.pid})\n`);
});
app.get('/users/:id', (req, res) => {
  res.json({ id: req.params.id, query: req.query });
});
app.post('/echo', (req, res) => {
  res.json({ received: req.body });
});
// The FastCGI params nginx sent (SCRIPT_FILENAME, SERVER_SOFTWARE, …) arrive as req.params, but
// Express overwrites req.params with each route's own; the listener below keeps them in res.locals.
app.get('/server', (req, res) => {
  const fcgi = res.locals.fcgi as Record<string, string>;
  res.json({ front: fcgi.SERVER_SOFTWARE, remoteAddress: req.socket.remoteAddress });
});

const server = createServer((req, res) => app(req, Object.assign(res, { locals: { fcgi: req.params } })));
if (process.env.PORT) server.listen(Number(process.env.PORT), '127.0.0.1');
else server.listen();
