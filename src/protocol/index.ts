export * from './constants.js';
export * from './decoder.js';
export * from './encoder.js';
export * from './errors.js';
export * from './name-value.js';
