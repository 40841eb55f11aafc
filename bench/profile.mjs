#!/usr/bin/env node
// Where mcpgate's CPU goes inside workerd: a V8 CPU profile of the worker's
// isolate, taken through the inspector while one scenario runs, summarised as
// the functions with the most self time (wasm functions keep their Rust names
// from build/named/, the copy `make build` keeps before stripping them).
//
//   node bench/profile.mjs --scenario 2kb|notools|models|prose|stream [--n N] [--build DIR] [--out FILE]
//
// The profile is written as a .cpuprofile (Chrome DevTools, speedscope) next
// to the summary. Sampling slows the isolate down: compare shares, not times.

import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WebSocket } from 'undici';
import { request, startProcess } from './lib.mjs';
import { KB, MB, ROOT, TOOLS, makeBody, makeConversation, seed, startMiniflare } from './setup.mjs';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const SCENARIO = arg('scenario', '2kb');
const BUILD = path.resolve(ROOT, arg('build', 'build'));
const WORK = path.join(ROOT, 'bench/.profile');
const OUT = path.resolve(ROOT, arg('out', `bench/.profile/${SCENARIO}.cpuprofile`));
const TOP = Number(arg('top', 30));

const SCENARIOS = {
  '2kb': { n: 3000, method: 'POST', path: '/openai/v1/responses', body: () => makeBody(2 * KB) },
  notools: {
    n: 3000, method: 'POST', path: '/openai/v1/responses',
    body: () => Buffer.from(JSON.stringify({ model: 'gpt-4.1', input: 'hi', tools: [TOOLS[2]] })),
  },
  models: { n: 3000, method: 'GET', path: '/openai/v1/models', body: () => null },
  healthz: { n: 5000, method: 'GET', path: '/healthz', body: () => null },
  // The first request after start: no warm-up, one request.
  cold: { n: 1, method: 'GET', path: '/healthz', body: () => null, cold: true },
  prose: { n: 60, method: 'POST', path: '/openai/v1/responses', body: () => makeConversation(MB) },
  stream: { n: 3, method: 'POST', path: '/openai/v1/responses?r=big&mb=20', body: () => makeBody(2 * KB) },
};

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
async function cdp(url) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let next = 1;
  const pending = new Map();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(JSON.stringify(msg.error)));
    else p.resolve(msg.result);
  };
  return {
    send(method, params = {}) {
      const id = next++;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    },
    close: () => ws.close(),
  };
}

/** Self time per function (name + location), heaviest first. */
export function summarise(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const kinds = new Map();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    const f = byId.get(profile.samples[i]).callFrame;
    // wasm code, the JS around it (bindings, guard, helpers), runtime built-ins, or V8's own.
    const kind = f.url.includes('.wasm') ? 'wasm' : f.url ? 'JS' : f.functionName.startsWith('(') ? f.functionName : 'runtime built-ins';
    kinds.set(kind, (kinds.get(kind) ?? 0) + dt);
    const where = f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}${where && !f.url.endsWith('.wasm') ? ` ${where}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  const rows = (m) => [...m].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: us / 1000, share: us / total }));
  return { totalMs: total / 1000, kinds: rows(kinds), rows: rows(self) };
}

async function main() {
  const sc = SCENARIOS[SCENARIO];
  if (!sc) throw new Error(`unknown scenario ${SCENARIO}; one of ${Object.keys(SCENARIOS).join(', ')}`);
  const n = Number(arg('n', sc.n));
  const up = await startProcess(path.join(ROOT, 'bench/upstream/target/release/bench-upstream'), ['0'], { ready: /listening (\d+)/ });
  process.on('exit', () => up.child.kill());
  const upstreamUrl = `http://127.0.0.1:${up.match[1]}`;
  const inspectorPort = 9300 + Math.floor(Math.random() * 500);
  // The deployed build's JS with the wasm that kept its names section.
  const build = path.join(WORK, 'build');
  mkdirSync(path.join(build, 'worker'), { recursive: true });
  const named = path.join(BUILD, 'named/index_bg.wasm');
  copyFileSync(existsSync(named) ? named : path.join(BUILD, 'index_bg.wasm'), path.join(build, 'index_bg.wasm'));
  for (const f of ['worker/shim.mjs', 'index.js']) copyFileSync(path.join(BUILD, f), path.join(build, f));
  const mfh = await startMiniflare(['mcpgate'], upstreamUrl, { build, inspectorPort });
  try {
    const { key } = sc.cold ? { key: '' } : await seed(mfh, console.log);
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    const body = sc.body();
    const url = `${mfh.urls.mcpgate}${sc.path}`;
    const once = async () => {
      const r = await request(url, { method: sc.method, headers, body, timeoutMs: 60000 });
      if (r.status !== 200) throw new Error(`${SCENARIO}: status ${r.status}`);
    };
    if (!sc.cold) for (let i = 0; i < Math.min(50, n); i++) await once(); // warm: tier-up before sampling

    const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
    const target = targets.find((t) => t.id.endsWith(':mcpgate')) ?? targets[0];
    const c = await cdp(target.webSocketDebuggerUrl);
    await c.send('Profiler.enable');
    await c.send('Profiler.setSamplingInterval', { interval: 50 });
    await c.send('Profiler.start');
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await once();
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const { profile } = await c.send('Profiler.stop');
    c.close();

    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, JSON.stringify(profile));
    const { totalMs, kinds, rows } = summarise(profile);
    const lines = [
      `scenario ${SCENARIO}: ${n} requests, ${wallMs.toFixed(0)} ms wall, ${totalMs.toFixed(0)} ms sampled in the isolate (${(totalMs / n).toFixed(3)} ms/request incl. idle)`,
      '',
      `By kind: ${kinds.map((k) => `${k.name} ${(k.share * 100).toFixed(1)}%`).join(', ')}.`,
      '',
      '| self ms/req | share | function |',
      '|---|---|---|',
      ...rows.slice(0, TOP).map((r) => `| ${(r.ms / n).toFixed(4)} | ${(r.share * 100).toFixed(1)}% | \`${r.name}\` |`),
    ];
    writeFileSync(OUT.replace(/\.cpuprofile$/, '.md'), `${lines.join('\n')}\n`);
    console.log(lines.join('\n'));
  } finally {
    await mfh.mf.dispose();
    up.child.kill();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
