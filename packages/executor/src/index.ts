export {};
export * from './context/index.js';
export * from './build/index.js';
export * from './sandbox/index.js';
