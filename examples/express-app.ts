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
// The FastCGI params nginx sent (SCRIPT_FILENAME, REMOTE_ADDR, …) are on req.params… except
// that Express reuses req.params for route params, so read them from the raw request instead.
app.get('/server', (req, res) => {
  res.json({ remoteAddress: req.socket.remoteAddress, protocol: req.httpVersion });
});

const server = createServer(app);
if (process.env.PORT) server.listen(Number(process.env.PORT), '127.0.0.1');
else server.listen();
