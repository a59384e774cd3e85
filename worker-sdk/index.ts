export type { FcgiIncomingMessage, FcgiRequestExtras } from './connection.js';
export { createFetchListener, type FetchHandler, type FetchInfo, serve } from './fetch.js';
export type { WorkerOptions } from './options.js';
export {
  createServer,
  type FcgiServer,
  type ListenOptions,
  NotListeningSocketError,
  type RequestListener,
} from './server.js';
