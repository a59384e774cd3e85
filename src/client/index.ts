export { buildCgiParams, type CgiParamsOptions, pairsFromRawHeaders } from './cgi-params.js';
export { type CgiHead, parseCgiHead, type ResponseHeaders } from './cgi-response.js';
export {
  type BufferedResponse,
  type Client,
  type ClientOptions,
  type ClientResponse,
  createClient,
  type RequestOptions,
} from './client.js';
export { type Body, describeTarget, type Target } from './connection.js';
export { type ClientErrorCode, FastCgiClientError } from './errors.js';
