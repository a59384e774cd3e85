// A worker written fetch-style: a web Request in, a web Response out.
//   under a starter:  fcgi-prefork -p 9000 -N 2 examples/fetch-hello.ts   (accepts on fd 0)
//   by itself:        PORT=9000 tsx examples/fetch-hello.ts                (listens on 127.0.0.1:9000)
import { serve } from '../worker-sdk/index.js';

const handler = async (request: Request): Promise<Response> => {
  const url = new URL(request.url);
  if (request.method === 'POST' && url.pathname === '/echo') {
    const body = new Uint8Array(await request.arrayBuffer());
    const digest = Buffer.from(await crypto.subtle.digest('SHA-256', body)).toString('hex');
    return Response.json({ bytes: body.length, sha256: digest });
  }
  if (url.pathname === '/stream') {
    let i = 0;
    const body = new ReadableStream<string>({
      async pull(controller) {
        await new Promise((r) => setTimeout(r, 20));
        controller.enqueue(`chunk ${i}\n`);
        if (++i === 5) controller.close();
      },
    }).pipeThrough(new TextEncoderStream());
    return new Response(body, { headers: { 'Content-Type': 'text/plain', 'X-Accel-Buffering': 'no' } });
  }
  return new Response(`Hello from a fetch-style worker (pid ${process.pid}) at ${url.pathname}\n`, {
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
  });
};

serve(handler, process.env.PORT ? { port: Number(process.env.PORT), host: '127.0.0.1' } : {});
