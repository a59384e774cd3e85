export type { ListenAddress, TcpAddress, UnixAddress } from '../src/net/address.js';
export { UserError } from '../src/net/errors.js';
export type { ListeningSocket } from '../src/net/listen.js';
export { formatStatus, queryStatus } from './control.js';
export { formatMetrics } from './metrics.js';
export type { Pool, PoolOptions, PoolStatus, WorkerInfo, WorkerState } from './pool.js';
export { startPool } from './pool.js';
