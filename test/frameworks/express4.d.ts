// `express4` is npm's alias for express@4 (package.json); @types/express describes v5, whose
// surface these tests use the same way.
declare module 'express4' {
  import express from 'express';
  export default express;
}
