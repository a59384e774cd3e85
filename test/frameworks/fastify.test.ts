import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { createServer, type FcgiIncomingMessage } from '../../worker-sdk/index.js';
import { type AppHooks, frameworkSuite, laterChunks } from './suite.js';

// Fastify builds its own node:http server unless given a serverFactory: that is the one line
// that puts it on FastCGI. Everything else, `app.listen` and `app.close` included, is stock.
function buildApp(hooks: AppHooks) {
  const app = Fastify({ serverFactory: (handler) => createServer(handler) as never });
  app.get('/hello', async (_request, reply) => {
    reply.type('text/plain');
    return 'hello from fastify';
  });
  app.get<{ Params: { id: string }; Querystring: { tag?: string } }>('/users/:id', async (request) => ({
    id: request.params.id,
    tag: request.query.tag,
    header: request.headers['x-test'] ?? null,
  }));
  app.post('/echo', async (request) => ({
    received: request.body,
    contentType: request.headers['content-type'],
  }));
  app.get('/stream', async (_request, reply) => {
    reply.header('X-Accel-Buffering', 'no').type('text/plain');
    async function* body() {
      yield 'chunk-0\n';
      await hooks.streamGate();
      yield* laterChunks();
    }
    return reply.send(Readable.from(body()));
  });
  app.get('/teapot', async () => {
    throw Object.assign(new Error("I'm a teapot"), { statusCode: 418 });
  });
  app.get('/boom', async () => {
    throw new Error('boom');
  });
  app.get('/cookies', async (_request, reply) => {
    reply.header('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly']);
    return 'ok';
  });
  app.get('/fcgi', async (request) => {
    const { params } = request.raw as FcgiIncomingMessage;
    return { software: params.SERVER_SOFTWARE, uri: params.REQUEST_URI };
  });
  return app;
}

frameworkSuite('fastify', async (hooks, port) => {
  const app = buildApp(hooks);
  await app.listen({ port, host: '127.0.0.1' });
  return () => app.close();
});
