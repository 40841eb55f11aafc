// End-to-end harness: starts the provider emulators, MCP servers and the real
// gateway (workerd via `wrangler dev`), gives admin helpers, records what the
// client sees, and checks that no test secret leaks (responses, KV files on
// disk, the runtime log).
//
// The gateway is started exactly as the README says `make build` allows:
//   npx wrangler dev --ip 127.0.0.1 --port PORT --persist-to DIR \
//     --var OPENAI_BASE_URL:... --var ANTHROPIC_BASE_URL:... \
//     --var ADMIN_TOKEN:... --var MASTER_KEY:... --var ALLOW_INSECURE_MCP_URLS:true
//
// One gateway per test file (files run one at a time: --test-concurrency=1).
// Environment knobs, for debugging only:
//   MCPGATE_E2E_KEEP=1            keep each gateway's temp dir (state/ and gateway.log)
//   MCPGATE_E2E_WORKER_DIR=DIR    run `wrangler dev` in DIR instead of the repo root

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { test as nodeTest } from 'node:test';
import { fetch as undiciFetch } from 'undici';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startProviders } from '../emulators/provider.mjs';
import { startMcpServer } from '../emulators/mcp-server.mjs';
import { checkAdminResponse } from './openapi.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** node:test's `test` with a timeout, so a hung gateway fails the test instead of the CI run. */
export function test(name, fn) {
  return nodeTest(name, { timeout: 120_000 }, fn);
}

// ---------------------------------------------------------------------------
// Secrets

/** Every secret made for this test file; leak checks look for all of them. */
export const SECRETS = new Map(); // value -> label

/** A distinctive random secret, registered for the leak checks. */
export function newSecret(label, prefix = '') {
  const v = `${prefix}${label.replace(/[^A-Za-z0-9]/g, '')}${randomBytes(18).toString('hex')}`;
  SECRETS.set(v, label);
  return v;
}

/** Returns the registered secrets found in `text` (string or Buffer). */
export function findSecrets(text, secrets = SECRETS) {
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(String(text ?? ''), 'utf8');
  const found = [];
  for (const [value, label] of secrets) {
    if (buf.includes(Buffer.from(value, 'utf8'))) found.push(label);
  }
  return found;
}

/** Recursively lists every regular file under `dir`. */
export function listFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...listFiles(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

/** Scans every file under `dir` (binary-safe) for every secret; returns `[{file, secret}]`. */
export function scanDirForSecrets(dir, secrets = SECRETS) {
  const hits = [];
  for (const f of listFiles(dir)) {
    const buf = readFileSync(f);
    for (const label of findSecrets(buf, secrets)) hits.push({ file: path.relative(dir, f), secret: label });
  }
  return hits;
}

// ---------------------------------------------------------------------------
// Ports and processes

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A port that nothing listens on (opened, then closed). */
export async function closedPort() {
  return freePort();
}

// ---------------------------------------------------------------------------
// What the client sees

/** Every response a client received from the gateway in this file: {method, url, status, headers, body}. */
export const SEEN = [];

/**
 * A fetch that records the status, headers and full body of every gateway
 * response (streams are teed, not delayed) into SEEN. `allowSecrets` names
 * secrets this response may legitimately contain (e.g. a freshly issued key).
 *
 * It is undici 7's fetch, not Node's built-in one. Node 20's built-in fetch
 * (undici 6.x) stops listening for a request's abort once the whole HTTP
 * response has arrived; an abort that lands after that, before the body
 * stream was read to its end, leaves the body and every clone of it pending
 * for ever, neither done nor errored (fixed in undici 7.0.0). The MCP SDK
 * client's close() aborts its requests right after it parsed the last
 * answer, i.e. in exactly that window, so the clone read below never
 * finished although the gateway had ended the body (the relay suite's
 * "client responses that never finished"). With undici 7 such a body fails
 * with AbortError; the bytes that had arrived by then (the client could read
 * them too) are kept for the leak checks.
 */
export function recordingFetch({ allowSecrets = [] } = {}) {
  return async (input, init) => {
    const res = await undiciFetch(input, init);
    const url = typeof input === 'string' ? input : input.url ?? String(input);
    const entry = {
      method: init?.method ?? (typeof input === 'object' && input.method) ?? 'GET',
      url,
      status: res.status,
      headers: [...res.headers.entries()],
      body: null,
      allowSecrets,
    };
    SEEN.push(entry);
    entry.done = readAll(res.clone().body).then((b) => {
      entry.body = b;
    });
    return res;
  };
}

/** Every byte of `body` up to its end, or up to the failure (an abort, a reset) that ended it. */
async function readAll(body) {
  const parts = [];
  if (body) {
    const reader = body.getReader();
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        parts.push(r.value);
      }
    } catch {
      /* keep what arrived */
    }
  }
  return Buffer.concat(parts);
}

/** Asserts that nothing any client saw contains a registered secret. */
export async function assertNoSecretsSeen() {
  await Promise.all(SEEN.map((e) => e.done));
  const leaks = [];
  for (const e of SEEN) {
    const allowed = new Set(e.allowSecrets);
    const secrets = new Map([...SECRETS].filter(([v]) => !allowed.has(v)));
    const text = Buffer.concat([Buffer.from(JSON.stringify(e.headers)), e.body ?? Buffer.alloc(0)]);
    for (const label of findSecrets(text, secrets)) leaks.push(`${e.method} ${e.url} -> ${e.status}: ${label}`);
  }
  assert.deepEqual(leaks, [], 'secrets visible to a client');
  assert.ok(SEEN.length > 0, 'the recorder saw responses');
}

// ---------------------------------------------------------------------------
// The gateway

/** Sets `main` to an absolute path and drops `[build]` (the build already ran). */
function relocatedConfig(configPath) {
  const dir = path.dirname(configPath);
  const out = [];
  let inBuild = false;
  for (const line of readFileSync(configPath, 'utf8').split('\n')) {
    if (/^\s*\[/.test(line)) inBuild = /^\s*\[build\]\s*$/.test(line);
    if (inBuild) continue;
    const m = /^(main|directory)\s*=\s*"([^"]+)"/.exec(line);
    out.push(m ? `${m[1]} = ${JSON.stringify(path.resolve(dir, m[2]))}` : line);
  }
  return out.join('\n');
}

/**
 * Writes the configs for a gateway with auxiliary Workers bound to it as
 * services (`wrangler dev -c gateway -c aux…`; wrangler runs them in one
 * workerd, the aux Workers reachable only through their bindings). Returns
 * the `-c` arguments.
 * @param {string} root temp dir
 * @param {{binding:string, dir:string, vars?:Record<string,string>}[]} services
 */
function serviceConfigs(root, services) {
  let gateway = relocatedConfig(path.join(REPO_ROOT, 'wrangler.toml'));
  const args = [];
  const aux = [];
  for (const [i, svc] of services.entries()) {
    const auxPath = path.join(REPO_ROOT, svc.dir, 'wrangler.toml');
    let text = relocatedConfig(auxPath);
    const name = /^name\s*=\s*"([^"]+)"/m.exec(text)[1];
    for (const [k, v] of Object.entries(svc.vars ?? {})) {
      text = text.replace(new RegExp(`^${k}\\s*=.*$`, 'm'), `${k} = ${JSON.stringify(v)}`);
    }
    const file = path.join(root, `aux-${i}.toml`);
    writeFileSync(file, text);
    aux.push(file);
    gateway += `\n[[services]]\nbinding = ${JSON.stringify(svc.binding)}\nservice = ${JSON.stringify(name)}\n`;
  }
  const main = path.join(root, 'gateway.toml');
  writeFileSync(main, gateway);
  args.push('-c', main);
  for (const f of aux) args.push('-c', f);
  return args;
}

/**
 * Starts `wrangler dev` with a fresh persist dir and waits for GET /healthz.
 * `services` adds auxiliary Workers bound to the gateway (see serviceConfigs);
 * `port` fixes the port (e.g. to know PUBLIC_BASE_URL up front); `persistDir` reuses
 * the KV / Durable Object state of an earlier gateway (a restart); `vars` may set
 * ADMIN_TOKEN and MASTER_KEY (else fresh ones are made).
 * @param {{openaiBaseUrl:string, anthropicBaseUrl:string, vars?:Record<string,string>,
 *          services?:{binding:string, dir:string, vars?:Record<string,string>}[], port?:number,
 *          persistDir?:string}} opts
 */
export async function startGateway({ openaiBaseUrl, anthropicBaseUrl, vars = {}, services = [], port: fixedPort, persistDir: reuseDir }) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'mcpgate-e2e-'));
  const persistDir = reuseDir ?? path.join(root, 'state');
  const logFile = path.join(root, 'gateway.log');
  const port = fixedPort ?? await freePort();
  const adminToken = vars.ADMIN_TOKEN ?? newSecret('admin-token', 'adm_');
  const masterKey = vars.MASTER_KEY ?? randomBytes(32).toString('base64');
  SECRETS.set(masterKey, 'MASTER_KEY');
  const allVars = {
    OPENAI_BASE_URL: openaiBaseUrl,
    ANTHROPIC_BASE_URL: anthropicBaseUrl,
    ADMIN_TOKEN: adminToken,
    MASTER_KEY: masterKey,
    ALLOW_INSECURE_MCP_URLS: 'true',
    ...vars,
  };
  // Each gateway gets its own inspector port: wrangler's default (9229) collides when suites run side by side.
  const inspectorPort = await freePort();
  const args = ['wrangler', 'dev', ...(services.length ? serviceConfigs(root, services) : []),
    '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspectorPort), '--persist-to', persistDir];
  for (const [k, v] of Object.entries(allVars)) args.push('--var', `${k}:${v}`);
  const child = spawn('npx', args, {
    // MCPGATE_E2E_WORKER_DIR points the suite at another worker checkout (debugging only).
    cwd: process.env.MCPGATE_E2E_WORKER_DIR ?? REPO_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  let log = '';
  const onData = (d) => {
    log += d.toString('utf8');
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exited = null;
  // If the test process dies without teardown, take the gateway down with it.
  const killOnExit = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  process.on('exit', killOnExit);
  const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve(exited);
  }));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 180_000;
  for (;;) {
    if (exited) {
      process.off('exit', killOnExit);
      rmSync(root, { recursive: true, force: true });
      throw new Error(`wrangler dev exited early (${JSON.stringify(exited)}):\n${log.slice(-4000)}`);
    }
    try {
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) {
        await r.arrayBuffer();
        break;
      }
      await r.arrayBuffer();
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      killOnExit();
      process.off('exit', killOnExit);
      rmSync(root, { recursive: true, force: true });
      throw new Error(`gateway did not answer /healthz within 180 s:\n${log.slice(-4000)}`);
    }
    await sleep(150);
  }

  async function stop() {
    if (!exited) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const t = await Promise.race([exitPromise, sleep(5000).then(() => null)]);
      if (!t) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await exitPromise;
      }
      // workerd may outlive the npx/wrangler parent briefly; make sure the group is gone.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    process.off('exit', killOnExit);
    writeFileSync(logFile, log);
  }

  const recFetch = recordingFetch();

  /** Raw request to the gateway; returns {status, headers, text, json}. */
  async function request(method, p, { headers = {}, body, fetchImpl = recFetch } = {}) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      if (typeof body === 'string' || Buffer.isBuffer(body) || body instanceof Uint8Array) init.body = body;
      else {
        init.body = JSON.stringify(body);
        if (!Object.keys(init.headers).some((h) => h.toLowerCase() === 'content-type')) init.headers['content-type'] = 'application/json';
      }
    }
    const res = await fetchImpl(`${url}${p}`, init);
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** An admin call; every answer is checked against docs/openapi.json (a mismatch fails the test). */
  const admin = async (method, p, body, { token = adminToken, fetchImpl } = {}) => {
    const r = await request(method, p, { headers: token === null ? {} : { authorization: `Bearer ${token}` }, body, fetchImpl });
    const problems = checkAdminResponse(method, p, r);
    assert.deepEqual(problems, [], `${method} ${p} → ${r.status} does not match docs/openapi.json`);
    return r;
  };

  const gw = {
    url,
    port,
    root,
    persistDir,
    logFile,
    adminToken,
    masterKey,
    vars: allVars,
    log: () => log,
    stop,
    request,
    admin,
    /** fetch() that records what the client saw (for the leak checks). */
    fetch: (u, init) => recFetch(u.startsWith('/') ? `${url}${u}` : u, init),
    /** PUT a tenant; asserts 200 and returns the JSON answer. */
    async putTenant(id, body) {
      const r = await admin('PUT', `/admin/tenants/${id}`, body);
      assert.equal(r.status, 200, `PUT tenant ${id}: ${r.text}`);
      return r.json;
    },
    async getTenant(id) {
      return admin('GET', `/admin/tenants/${id}`);
    },
    async deleteTenant(id) {
      return admin('DELETE', `/admin/tenants/${id}`);
    },
    /** Issues a gateway key; asserts 201 and registers the key as a secret. */
    async createKey(id) {
      const r = await admin('POST', `/admin/tenants/${id}/keys`, undefined, { fetchImpl: fetch });
      assert.equal(r.status, 201, `POST keys for ${id}: ${r.text}`);
      SECRETS.set(r.json.key, `gateway key of ${id}`);
      return r.json;
    },
    openai(apiKey, opts = {}) {
      return new OpenAI({ baseURL: `${url}/openai/v1`, apiKey, maxRetries: 0, fetch: recFetch, ...opts });
    },
    anthropic(apiKey, opts = {}) {
      return new Anthropic({ baseURL: `${url}/anthropic`, apiKey, maxRetries: 0, fetch: recFetch, ...opts });
    },
  };
  return gw;
}

// ---------------------------------------------------------------------------
// A whole stack: providers + MCP servers + gateway

/**
 * Starts the provider emulators, the given MCP servers and a gateway pointed at
 * the emulators. Provider keys are created with `stack.providerKey(...)`.
 */
export async function startStack({ vars = {}, delayMs = 100, mcp = {} } = {}) {
  const providers = await startProviders({ delayMs });
  const servers = {};
  for (const [name, auth] of Object.entries(mcp)) servers[name] = await startMcpServer({ name, auth });
  let gw;
  try {
    const tableVars = { XAI_BASE_URL: providers.xai.url, GROQ_BASE_URL: providers.groq.url, GEMINI_BASE_URL: providers.gemini.url };
    gw = await startGateway({ openaiBaseUrl: providers.openai.url, anthropicBaseUrl: providers.anthropic.url, vars: { ...tableVars, ...vars } });
  } catch (e) {
    await providers.close();
    await Promise.all(Object.values(servers).map((s) => s.close()));
    throw e;
  }
  let closed = false;
  return {
    gw,
    providers,
    openaiEmu: providers.openai,
    anthropicEmu: providers.anthropic,
    servers,
    /** A new OpenAI provider key that the emulator accepts. */
    openaiKey(label) {
      const k = newSecret(`openai key ${label}`, 'sk-proj-');
      providers.openai.keys.add(k);
      return k;
    },
    anthropicKey(label) {
      const k = newSecret(`anthropic key ${label}`, 'sk-ant-api03-');
      providers.anthropic.keys.add(k);
      return k;
    },
    /** Forgets every recorded upstream request and MCP call. */
    reset() {
      providers.reset();
      for (const s of Object.values(servers)) s.reset();
    },
    async close() {
      if (closed) return;
      closed = true;
      await gw.stop();
      await providers.close();
      await Promise.all(Object.values(servers).map((s) => s.close()));
      if (!process.env.MCPGATE_E2E_KEEP) rmSync(gw.root, { recursive: true, force: true });
    },
  };
}

/**
 * The closing checks every file runs last: nothing the client saw holds a
 * secret, KV on disk holds none, and the runtime log holds none and no panic.
 * Stops the gateway first so every write is on disk.
 */
export async function assertNoLeaks(stack) {
  await assertNoSecretsSeen();
  await stack.gw.stop();
  const files = listFiles(stack.gw.persistDir);
  assert.ok(files.length > 0, 'the persist dir holds KV files');
  assert.deepEqual(scanDirForSecrets(stack.gw.persistDir), [], 'plaintext secrets in the KV persist dir');
  // wrangler 4 prints --var values as "(hidden)", so every secret, the admin
  // token and master key included, must stay out of the log.
  const log = stack.gw.log();
  assert.deepEqual(findSecrets(log), [], 'secrets in the wrangler/runtime log');
  assert.doesNotMatch(log, /panic/i, 'the runtime log mentions a panic');
}

/** Reads an SSE response body and returns [{event, data, at}] with arrival times (ms since `t0`). */
export async function readSse(res, t0 = Date.now()) {
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body) {
    const at = Date.now() - t0;
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = null;
      const data = [];
      for (const line of frame.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (event !== null || data.length) events.push({ event, data: data.join('\n'), at });
    }
  }
  return events;
}

/** Awaits a promise that must reject; returns the error. */
export async function rejects(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to fail');
}
