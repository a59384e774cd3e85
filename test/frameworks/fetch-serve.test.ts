import { type FetchInfo, serve } from '../../worker-sdk/index.js';
import { type AppHooks, frameworkSuite, laterChunks } from './suite.js';

// The SDK's own fetch-style API: a Request in, a Response out, no framework.
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function handler(hooks: AppHooks) {
  const route = async (request: Request, info: FetchInfo): Promise<Response> => {
    const url = new URL(request.url);
    const user = /^\/users\/([^/]+)$/.exec(url.pathname);
    if (request.method === 'GET' && url.pathname === '/hello') return new Response('hello from serve');
    if (request.method === 'GET' && user)
      return Response.json({
        id: user[1],
        tag: url.searchParams.get('tag'),
        header: request.headers.get('x-test'),
      });
    if (request.method === 'POST' && url.pathname === '/echo')
      return Response.json({
        received: await request.json(),
        contentType: request.headers.get('content-type'),
      });
    if (url.pathname === '/stream') {
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(encoder.encode('chunk-0\n'));
          await hooks.streamGate();
          for await (const chunk of laterChunks()) controller.enqueue(encoder.encode(chunk));
          controller.close();
        },
      });
      return new Response(body, { headers: { 'X-Accel-Buffering': 'no', 'Content-Type': 'text/plain' } });
    }
    if (url.pathname === '/fcgi')
      return Response.json({ software: info.params.SERVER_SOFTWARE, uri: info.params.REQUEST_URI });
    if (url.pathname === '/teapot') throw new HttpError(418, "I'm a teapot");
    if (url.pathname === '/boom') throw new Error('boom');
    if (url.pathname === '/cookies') {
      const headers = new Headers();
      headers.append('Set-Cookie', 'a=1; Path=/');
      headers.append('Set-Cookie', 'b=2; HttpOnly');
      return new Response('ok', { headers });
    }
    return new Response('not found', { status: 404 });
  };
  // The application's own error handling, as a fetch handler would have it.
  return async (request: Request, info: FetchInfo): Promise<Response> => {
    try {
      return await route(request, info);
    } catch (err) {
      if (err instanceof HttpError) return new Response(err.message, { status: err.status });
      return new Response('Internal Server Error', { status: 500 });
    }
  };
}

frameworkSuite('serve', async (hooks, port) => {
  const server = serve(handler(hooks), { port, host: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
});
