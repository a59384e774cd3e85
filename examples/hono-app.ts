// A Hono app on FastCGI through @hono/node-server's node:http adapter.
//   under a starter:  fcgi-prefork -p 9000 -N 4 examples/hono-app.ts   (accepts on fd 0)
//   by itself:        PORT=9000 tsx examples/hono-app.ts                (listens on 127.0.0.1:9000)
// (A Hono app is also a fetch handler: `serve(app.fetch)` from the worker SDK works too.)
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { createServer } from '../worker-sdk/index.js';

const app = new Hono();
app.get('/', (c) => c.text(`Hello from Hono on FastCGI (pid ${process.pid})\n`));
app.get('/users/:id', (c) => c.json({ id: c.req.param('id'), query: c.req.query() }));
app.post('/echo', async (c) => c.json({ received: await c.req.json() }));

const server = createServer(getRequestListener(app.fetch));
if (process.env.PORT) server.listen(Number(process.env.PORT), '127.0.0.1');
else server.listen();
