export * from './address.js';
export * from './errors.js';
export * from './fds.js';
export * from './listen.js';
export * from './shared-reads.js';
export * from './stream-handle.js';
export * from './transport.js';
export * from './users.js';
