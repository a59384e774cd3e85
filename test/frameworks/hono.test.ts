import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import { HTTPException } from 'hono/http-exception';
import { stream } from 'hono/streaming';
import { createServer, type FcgiIncomingMessage } from '../../worker-sdk/index.js';
import { type AppHooks, frameworkSuite, laterChunks } from './suite.js';

// Hono is fetch-shaped; @hono/node-server's getRequestListener adapts it to node:http, and
// that adapter runs on the worker SDK as it is.
function buildApp(hooks: AppHooks) {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/hello', (c) => c.text('hello from hono'));
  app.get('/users/:id', (c) =>
    c.json({ id: c.req.param('id'), tag: c.req.query('tag'), header: c.req.header('x-test') ?? null }),
  );
  app.post('/echo', async (c) =>
    c.json({ received: await c.req.json(), contentType: c.req.header('content-type') }),
  );
  app.get('/stream', (c) => {
    c.header('X-Accel-Buffering', 'no');
    c.header('Content-Type', 'text/plain');
    return stream(c, async (s) => {
      await s.write('chunk-0\n');
      await hooks.streamGate();
      for await (const chunk of laterChunks()) await s.write(chunk);
    });
  });
  app.get('/teapot', () => {
    throw new HTTPException(418, { message: "I'm a teapot" });
  });
  app.get('/boom', () => {
    throw new Error('boom');
  });
  app.get('/cookies', (c) => {
    setCookie(c, 'a', '1', { path: '/' });
    setCookie(c, 'b', '2', { httpOnly: true });
    return c.text('ok');
  });
  app.get('/fcgi', (c) => {
    const { params } = c.env.incoming as FcgiIncomingMessage;
    return c.json({ software: params.SERVER_SOFTWARE, uri: params.REQUEST_URI });
  });
  // Hono's default onError logs the error; the answer (500) is the same.
  app.onError((err, c) =>
    err instanceof HTTPException ? err.getResponse() : c.text('Internal Server Error', 500),
  );
  return app;
}

frameworkSuite('hono', async (hooks, port) => {
  const server = createServer(getRequestListener(buildApp(hooks).fetch));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
});
