import express4 from 'express4';
import type { Params } from '../../src/protocol/index.js';
import { createServer } from '../../worker-sdk/index.js';
import { type AppHooks, frameworkSuite, laterChunks } from './suite.js';

// Express 4 (re-parents req/res onto its own prototypes, and does not catch async rejections),
// with its default error handler; only `createServer` comes from the worker SDK.
function buildApp(hooks: AppHooks) {
  const app = express4();
  app.use(express4.json({ limit: '1mb' }));
  app.get('/hello', (_req, res) => {
    res.type('text/plain').send('hello from express4');
  });
  app.get('/users/:id', (req, res) => {
    res.json({ id: req.params.id, tag: req.query.tag, header: req.get('x-test') ?? null });
  });
  app.post('/echo', (req, res) => {
    res.json({ received: req.body, contentType: req.get('content-type') });
  });
  app.get('/stream', (_req, res, next) => {
    res.set('X-Accel-Buffering', 'no').type('text/plain');
    res.write('chunk-0\n');
    (async () => {
      await hooks.streamGate();
      for await (const chunk of laterChunks()) res.write(chunk);
      res.end();
    })().catch(next);
  });
  app.get('/teapot', () => {
    throw Object.assign(new Error("I'm a teapot"), { status: 418 });
  });
  app.get('/boom', (_req, _res, next) => {
    next(new Error('boom'));
  });
  app.get('/cookies', (_req, res) => {
    res.cookie('a', '1').cookie('b', '2', { httpOnly: true, path: '' }).send('ok');
  });
  // Express 4 too sets req.params to the route's params on every layer: the FastCGI params
  // stay on req.fcgiParams, which the SDK sets as an own property.
  app.get('/fcgi', (req, res) => {
    const params = (req as unknown as { fcgiParams: Params }).fcgiParams;
    res.json({ software: params.SERVER_SOFTWARE, uri: params.REQUEST_URI });
  });
  return app;
}

frameworkSuite('express4', async (hooks, port) => {
  const app = buildApp(hooks);
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
});
