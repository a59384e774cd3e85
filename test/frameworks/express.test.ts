import express, { type NextFunction, type Request, type Response } from 'express';
import type { Params } from '../../src/protocol/index.js';
import { createServer } from '../../worker-sdk/index.js';
import { type AppHooks, frameworkSuite, laterChunks } from './suite.js';

// Express 5, written as for node:http; only `createServer` comes from the worker SDK.
function buildApp(hooks: AppHooks): express.Express {
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.get('/hello', (_req, res) => {
    res.type('text/plain').send('hello from express');
  });
  app.get('/users/:id', (req, res) => {
    res.json({ id: req.params.id, tag: req.query.tag, header: req.get('x-test') ?? null });
  });
  app.post('/echo', (req, res) => {
    res.json({ received: req.body, contentType: req.get('content-type') });
  });
  app.get('/stream', async (_req, res) => {
    res.set('X-Accel-Buffering', 'no').type('text/plain');
    res.write('chunk-0\n');
    await hooks.streamGate();
    for await (const chunk of laterChunks()) res.write(chunk);
    res.end();
  });
  // Express 5 passes a rejected async handler to the error handler.
  app.get('/teapot', async () => {
    throw Object.assign(new Error("I'm a teapot"), { status: 418, expose: true });
  });
  app.get('/boom', () => {
    throw new Error('boom');
  });
  app.get('/cookies', (_req, res) => {
    res.cookie('a', '1').cookie('b', '2', { httpOnly: true, path: '' }).send('ok');
  });
  // Express sets req.params to the route's params on every layer; the FastCGI params stay on
  // req.fcgiParams (an own property of the SDK's request, so Express's re-parenting keeps it).
  app.get('/fcgi', (req, res) => {
    const params = (req as unknown as { fcgiParams: Params }).fcgiParams;
    res.json({ software: params.SERVER_SOFTWARE, uri: params.REQUEST_URI });
  });
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    res
      .status(err.status ?? 500)
      .type('text/plain')
      .send(err.status ? err.message : 'Internal Server Error');
  });
  return app;
}

frameworkSuite('express', async (hooks, port) => {
  const server = createServer(buildApp(hooks));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
});
