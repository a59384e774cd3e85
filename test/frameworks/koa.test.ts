import { Readable } from 'node:stream';
import Router from '@koa/router';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import { createServer, type FcgiIncomingMessage } from '../../worker-sdk/index.js';
import { type AppHooks, frameworkSuite, laterChunks } from './suite.js';

// Koa with @koa/router and koa-bodyparser; `app.callback()` is the node:http listener.
function buildApp(hooks: AppHooks): Koa {
  const app = new Koa();
  // Koa's default error handler answers; it would also log every 500 to stderr.
  app.silent = true;
  const router = new Router();
  router.get('/hello', (ctx) => {
    ctx.type = 'text/plain';
    ctx.body = 'hello from koa';
  });
  router.get('/users/:id', (ctx) => {
    ctx.body = { id: ctx.params.id, tag: ctx.query.tag, header: ctx.get('x-test') || null };
  });
  router.post('/echo', (ctx) => {
    ctx.body = { received: ctx.request.body, contentType: ctx.get('content-type') };
  });
  router.get('/stream', (ctx) => {
    ctx.set('X-Accel-Buffering', 'no');
    ctx.type = 'text/plain';
    async function* body() {
      yield 'chunk-0\n';
      await hooks.streamGate();
      yield* laterChunks();
    }
    ctx.body = Readable.from(body());
  });
  router.get('/teapot', (ctx) => {
    ctx.throw(418, "I'm a teapot");
  });
  router.get('/boom', () => {
    throw new Error('boom');
  });
  router.get('/cookies', (ctx) => {
    ctx.cookies.set('a', '1', { path: '/', httpOnly: false });
    ctx.cookies.set('b', '2', { path: '', httpOnly: true });
    ctx.body = 'ok';
  });
  router.get('/fcgi', (ctx) => {
    const { params } = ctx.req as FcgiIncomingMessage;
    ctx.body = { software: params.SERVER_SOFTWARE, uri: params.REQUEST_URI };
  });
  app.use(bodyParser());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

frameworkSuite('koa', async (hooks, port) => {
  const server = createServer(buildApp(hooks).callback());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
});
