// A Koa app on FastCGI: `createServer(app.callback())` in place of `app.listen()`.
//   under a starter:  fcgi-prefork -p 9000 -N 4 examples/koa-app.ts   (accepts on fd 0)
//   by itself:        PORT=9000 tsx examples/koa-app.ts                (listens on 127.0.0.1:9000)
import Router from '@koa/router';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import { createServer } from '../worker-sdk/index.js';

const app = new Koa();
const router = new Router();
router.get('/', (ctx) => {
  ctx.type = 'text/plain';
  ctx.body = `Hello from Koa on FastCGI (pid ${process.pid})\n`;
});
router.get('/users/:id', (ctx) => {
  ctx.body = { id: ctx.params.id, query: ctx.query };
});
router.post('/echo', (ctx) => {
  ctx.body = { received: ctx.request.body };
});
app.use(bodyParser()).use(router.routes()).use(router.allowedMethods());

const server = createServer(app.callback());
if (process.env.PORT) server.listen(Number(process.env.PORT), '127.0.0.1');
else server.listen();
