// The SDK's fetch-style serve(), built package, fd 0.
import { serve } from '../../dist/worker-sdk/index.js';

const big = 'x'.repeat(64 * 1024);
serve(
  (request) =>
    new Response(new URL(request.url).pathname === '/64k' ? big : 'Hello, world!\n', {
      headers: { 'Content-Type': 'text/plain' },
    }),
);
