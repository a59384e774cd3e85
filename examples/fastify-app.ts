// A Fastify app on FastCGI: `serverFactory` hands Fastify the worker SDK's server instead of
// node:http's; routes, hooks, plugins and `app.listen` stay as they are.
//   under a starter:  fcgi-prefork -p 9000 -N 4 examples/fastify-app.ts   (accepts on fd 0)
//   by itself:        PORT=9000 tsx examples/fastify-app.ts                (listens on 127.0.0.1:9000)
import Fastify from 'fastify';
import { createServer } from '../worker-sdk/index.js';

const server = createServer();
const app = Fastify({
  serverFactory: (handler) => {
    server.on('request', handler);
    return server as never;
  },
});
app.get('/', async () => `Hello from Fastify on FastCGI (pid ${process.pid})\n`);
app.get<{ Params: { id: string } }>('/users/:id', async (request) => ({
  id: request.params.id,
  query: request.query,
}));
app.post('/echo', async (request) => ({ received: request.body }));

if (process.env.PORT) await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
else {
  // On fd 0 Fastify's own listen() has nothing to bind: get it ready, then accept on fd 0.
  await app.ready();
  server.listen();
}
