#!/usr/bin/env node
// mcpgate benchmark harness. Run through `make bench` / `make bench-smoke`
// (bench/bench.sh), which build the worker and the upstream emulator first.
//
//   node bench/run.mjs --mode full|smoke --out DIR [--only PHASE,...] [--build DIR]
//
// Everything runs on loopback and stops by itself. Four targets get identical
// requests: direct (client → upstream emulator), js-pass, js-inject, mcpgate; the
// three workers run in one workerd driven by Miniflare's API, each reached on its
// own direct socket (no wrangler dev proxy, no Miniflare entry worker). Local KV is
// Miniflare's in-memory KV. Results: DIR/results.json and DIR/results.md; the plot
// is drawn afterwards by bench/plot.py from results.json.

import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import {
  HAVE_TASKSET, PCTS, cpuNs, median, percentile, pin, request, rssBytes, run, runNodeLoad, runWrk,
  sleep, startProcess, which, wrkScript,
} from './lib.mjs';
import {
  KB, MB, PROVIDER_KEY, ROOT, TOOLS, makeBody, makeConversation, miniflareOptions, seed, startMiniflare,
} from './setup.mjs';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const MODE = arg('mode', 'full');
const SMOKE = MODE === 'smoke';
// `--only cpu,breakdown`: run just these phases (latency, cpu, breakdown, peruser, ttfb, stream, startup).
const ONLY = arg('only', null)?.split(',');
// `--build DIR`: measure another build of the worker (e.g. an older commit's) with this harness.
const SOURCE_BUILD = path.resolve(ROOT, arg('build', 'build'));
const OUT = path.resolve(ROOT, arg('out', SMOKE ? 'bench/.smoke' : 'bench'));
const WORK = path.join(OUT, SMOKE ? 'work' : '.work');
const UPSTREAM_BIN = path.join(ROOT, 'bench/upstream/target/release/bench-upstream');
// mcpgate is loaded from a snapshot of build/ taken at start, so a rebuild during
// the run cannot mix two builds (or remove the files under workerd's feet).
const BUILD = path.join(WORK, 'mcpgate-build');

const SETTINGS = SMOKE
  ? {
      rounds: 1, lowSeconds: 1, satSeconds: 1, warmSeconds: 0, satConns: 8,
      nodeLowRequests: 60, nodeSatRequests: 200,
      cpu: [['2 KB', 2 * KB, 20], ['100 KB', 100 * KB, 8], ['100 KB prose', 100 * KB, 8, makeConversation]],
      ttfbN: 5, sseDelayMs: 20, streamMB: 8, streamRounds: 1, startupReps: 1, wasmCompileReps: 3,
    }
  : {
      rounds: 3, lowSeconds: 4, satSeconds: 4, warmSeconds: 1, satConns: 32,
      nodeLowRequests: 2000, nodeSatRequests: 10000,
      cpu: [
        ['2 KB', 2 * KB, 400], ['100 KB', 100 * KB, 150], ['1 MB', MB, 30], ['10 MB', 10 * MB, 5],
        ['1 MiB prose', MB, 30, makeConversation],
      ],
      ttfbN: 40, sseDelayMs: 20, streamMB: 20, streamRounds: 2, startupReps: 3, wasmCompileReps: 10,
    };
const LOADGEN = process.env.BENCH_LOADGEN || (which('wrk') ? 'wrk' : 'node');
const NCPU = os.cpus().length;
// Core split: workerd alone on CPU 1; upstream, load generator and this harness on CPU 0.
const CPU_WORKERD = NCPU >= 2 && HAVE_TASKSET ? '1' : null;
const CPU_CLIENT = NCPU >= 2 && HAVE_TASKSET ? '0' : null;

const TARGETS = ['direct', 'js-pass', 'js-inject', 'mcpgate'];
const WORKERS = ['js-pass', 'js-inject', 'mcpgate'];

const log = (...a) => console.log(`[bench ${((Date.now() - T_START) / 1000).toFixed(1)}s]`, ...a);
const T_START = Date.now();

// ---------------------------------------------------------------------------

async function main() {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  mkdirSync(OUT, { recursive: true });
  mkdirSync(path.join(BUILD, 'worker'), { recursive: true });
  for (const f of ['worker/shim.mjs', 'index.js', 'index_bg.wasm']) copyFileSync(path.join(SOURCE_BUILD, f), path.join(BUILD, f));
  const machine = machineInfo(); // before pinning: nproc must see every CPU
  if (CPU_CLIENT) pin(process.pid, CPU_CLIENT);

  const results = {
    mode: MODE, settings: SETTINGS, loadgen: LOADGEN,
    machine,
    build: {
      wasm_sha256: createHash('sha256').update(readFileSync(path.join(BUILD, 'index_bg.wasm'))).digest('hex'),
      wasm_mtime: statSync(path.join(SOURCE_BUILD, 'index_bg.wasm')).mtime.toISOString(),
      git_head: run('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).stdout.trim(),
      git_dirty: run('git', ['status', '--porcelain', '--', 'src', 'Cargo.toml', 'Cargo.lock'], { cwd: ROOT }).stdout.trim() !== '',
    },
    core_split: CPU_WORKERD
      ? { workerd: `CPU ${CPU_WORKERD}`, 'upstream + load generator + harness': `CPU ${CPU_CLIENT}` }
      : { note: 'not pinned (fewer than 2 CPUs or no taskset)' },
    commands: [],
  };

  // Bodies
  const latencyBody = makeBody(2 * KB);
  const latencyBodyFile = path.join(WORK, 'body-latency.json');
  writeFileSync(latencyBodyFile, latencyBody);
  const bodyDir = path.join(WORK, 'bodies');
  mkdirSync(bodyDir);
  const cpuBodies = SETTINGS.cpu.map(([label, size, n, make = makeBody]) => {
    const body = make(size);
    const file = path.join(bodyDir, `body-${label.replace(/ /g, '-').toLowerCase()}.json`);
    writeFileSync(file, body);
    return { label, size, n, body, file };
  });

  // Upstream
  const up = await startProcess(UPSTREAM_BIN, ['0'], { ready: /listening (\d+)/ });
  process.on('exit', () => up.child.kill()); // also when the harness crashes
  const upstreamUrl = `http://127.0.0.1:${up.match[1]}`;
  if (CPU_CLIENT) pin(up.child.pid, CPU_CLIENT);
  log('upstream on', upstreamUrl);

  let mfh;
  try {
    mfh = await startMiniflare(WORKERS, upstreamUrl, { build: BUILD });
    if (CPU_WORKERD) pin(mfh.pid, CPU_WORKERD);
    log('workerd pid', mfh.pid, 'ready in', mfh.readyMs.toFixed(0), 'ms', mfh.urls);

    const { key: gatewayKey, userKey } = await seed(mfh, log);
    const base = { direct: upstreamUrl, ...mfh.urls };
    const url = (t, q = '') => (t === 'direct' ? `${base.direct}/v1/responses${q}` : `${base[t]}/openai/v1/responses${q}`);
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${gatewayKey}` };
    await sanity(url, headers, latencyBody);
    if (argv.includes('--hold')) {
      // debugging aid: keep everything up and print how to reach it
      console.log(JSON.stringify({ urls: base, key: gatewayKey, workerd: mfh.pid, work: WORK }));
      await sleep(Number(arg('hold', 120)) * 1000);
    }

    const want = (phase) => !ONLY || ONLY.includes(phase);
    if (want('latency')) results.latency = await latencyPhase(url, headers, latencyBody, latencyBodyFile, results.commands);
    if (want('cpu')) results.cpu = await cpuPhase(mfh.pid, url, headers, cpuBodies);
    if (want('breakdown')) results.breakdown = await breakdownPhase(mfh.pid, base, headers);
    if (want('peruser')) results.per_user = await perUserPhase(mfh.pid, base.mcpgate, gatewayKey, userKey);
    if (want('ttfb')) results.ttfb = await ttfbPhase(url, headers, latencyBody);
    if (want('stream')) results.stream = await streamPhase(mfh.pid, url, headers, latencyBody);
    results.rss_idle_end = rssBytes(mfh.pid);
    await mfh.mf.dispose();
    mfh = null;
    if (want('startup')) results.startup = await startupPhase(upstreamUrl);
  } finally {
    if (mfh) await mfh.mf.dispose().catch(() => {});
    up.child.kill();
  }
  if (ONLY) {
    // A partial run (while working on one figure): printed, no report written.
    console.log(JSON.stringify(results, null, 1));
    return;
  }

  results.bundle = bundlePhase(results.commands);
  results.rewrite = cargoBenchPhase(bodyDir, results.commands);
  results.elapsed_s = (Date.now() - T_START) / 1000;

  writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(results, null, 1));
  writeFileSync(path.join(OUT, 'results.md'), renderMarkdown(results));
  checkNumbers(results);
  log(`done in ${results.elapsed_s.toFixed(0)} s: ${path.relative(ROOT, path.join(OUT, 'results.md'))}`);
}

function machineInfo() {
  const cpuModel = (() => {
    try {
      return /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))[1];
    } catch {
      return os.cpus()[0]?.model;
    }
  })();
  const ver = (cmd, args) => run(cmd, args).stdout.trim().split('\n')[0];
  const workerdVer = ver(path.join(ROOT, 'node_modules/.bin/workerd'), ['--version']);
  return {
    date: new Date().toISOString(),
    nproc: run('nproc', []).stdout.trim(),
    cpu_model: cpuModel,
    mem_total_gb: (os.totalmem() / 1e9).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    rustc: ver('rustc', ['--version']),
    workerd: workerdVer,
    miniflare: JSON.parse(readFileSync(path.join(ROOT, 'node_modules/miniflare/package.json'), 'utf8')).version,
    wrk: which('wrk') ? (/wrk \S+/.exec(run('wrk', ['--version']).stdout)?.[0] ?? 'wrk') : 'absent (built-in Node load generator)',
  };
}

// Seeds mcpgate through its admin API and the JS workers' KV directly.
// Every target answers 200 through the emulator with the provider key; the
// injecting ones deliver "server_url" upstream, js-pass the body unchanged.
async function sanity(url, headers, body) {
  for (const t of TARGETS) {
    const r = await request(url(t, '?check=1'), { headers: t === 'direct' ? { ...headers, authorization: `Bearer ${PROVIDER_KEY}` } : headers, body, keepBody: true });
    const injected = r.headers['x-bench-injected'] === '1';
    const want = t === 'js-inject' || t === 'mcpgate';
    if (r.status !== 200 || r.headers['x-bench-auth-ok'] !== '1' || injected !== want) {
      throw new Error(`sanity check failed for ${t}: status ${r.status}, auth-ok ${r.headers['x-bench-auth-ok']}, injected ${injected}: ${r.body}`);
    }
  }
  log('sanity: all targets reach the upstream with the provider key; js-inject and mcpgate inject');
}

// ---------------------------------------------------------------------------
// 1+2. Latency at low load (1 connection) and at saturation; req/s.

async function latencyPhase(url, headers, body, bodyFile, commands) {
  const out = { low: {}, sat: {}, rounds: { low: [], sat: [] } };
  const scripts = {};
  for (const t of TARGETS) {
    scripts[t] = path.join(WORK, `wrk-${t}.lua`);
    wrkScript(scripts[t], { method: 'POST', headers: t === 'direct' ? { ...headers, authorization: `Bearer ${PROVIDER_KEY}` } : headers, bodyFile });
  }
  const once = async (t, conns, seconds, requests) =>
    LOADGEN === 'wrk'
      ? runWrk({ url: url(t), script: scripts[t], conns, seconds, cpus: CPU_CLIENT })
      : runNodeLoad({ url: url(t), method: 'POST', headers, body, conns, requests });
  const S = SETTINGS;
  if (LOADGEN === 'wrk') {
    commands.push(`taskset -c ${CPU_CLIENT ?? '-'} wrk -t1 -c1 -d${S.lowSeconds}s --timeout 10s -s bench/.work/wrk-TARGET.lua URL   # low load`);
    commands.push(`taskset -c ${CPU_CLIENT ?? '-'} wrk -t1 -c${S.satConns} -d${S.satSeconds}s --timeout 10s -s bench/.work/wrk-TARGET.lua URL   # saturation`);
  }
  if (S.warmSeconds > 0) {
    log('warm-up');
    for (const t of TARGETS) await once(t, 4, S.warmSeconds, 200);
  }
  for (let r = 0; r < S.rounds; r++) {
    const order = TARGETS.map((_, i) => TARGETS[(i + r) % TARGETS.length]);
    const low = {};
    const sat = {};
    for (const t of order) low[t] = await once(t, 1, S.lowSeconds, S.nodeLowRequests);
    for (const t of order) sat[t] = await once(t, S.satConns, S.satSeconds, S.nodeSatRequests);
    out.rounds.low.push(low);
    out.rounds.sat.push(sat);
    log(`latency round ${r + 1}/${S.rounds}:`, Object.entries(low).map(([t, x]) => `${t} p50 ${(x.p['50'] / 1000).toFixed(3)} ms`).join(', '));
    log(`saturation round ${r + 1}/${S.rounds}:`, Object.entries(sat).map(([t, x]) => `${t} ${x.rps.toFixed(0)} req/s`).join(', '));
  }
  for (const phase of ['low', 'sat']) {
    const rounds = out.rounds[phase];
    for (const t of TARGETS) {
      const m = (f) => median(rounds.map((rd) => f(rd[t], rd)));
      out[phase][t] = {
        p50_ms: m((x) => x.p['50'] / 1000),
        p99_ms: m((x) => x.p['99'] / 1000),
        rps: m((x) => x.rps),
        added_p50_ms: m((x, rd) => (x.p['50'] - rd.direct.p['50']) / 1000),
        added_p99_ms: m((x, rd) => (x.p['99'] - rd.direct.p['99']) / 1000),
        rps_vs_js_pass: m((x, rd) => x.rps / rd['js-pass'].rps),
        rps_vs_js_inject: m((x, rd) => x.rps / rd['js-inject'].rps),
        p50_vs_js_pass: m((x, rd) => x.p['50'] / rd['js-pass'].p['50']),
        errors: rounds.reduce((a, rd) => a + rd[t].errors + rd[t].non2xx, 0),
        requests: rounds.reduce((a, rd) => a + rd[t].requests, 0),
        // percentile curve (median over rounds), for the plot
        curve_ms: Object.fromEntries(PCTS.map((q) => [q, m((x) => x.p[String(q)] / 1000)])),
      };
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// 3. CPU time per request inside workerd, by body size.
//
// workerd runs alone on its core; the CPU time of all its threads
// (/proc/PID/task/*/schedstat, ns) is read before and after N sequential
// requests; the difference / N is the CPU per request, all of it: HTTP in,
// KV read, the worker's own work, HTTP out. js-pass does everything but the
// rewrite, so mcpgate − js-pass is what the rewrite (and decrypting the tenant) costs.

async function cpuPhase(pid, url, headers, bodies) {
  const out = {};
  for (const b of bodies) {
    out[b.label] = { size: b.body.length, n: b.n, rounds: [] };
    for (let r = 0; r < SETTINGS.rounds; r++) {
      const order = WORKERS.map((_, i) => WORKERS[(i + r) % WORKERS.length]);
      const round = {};
      for (const t of order) {
        await request(url(t), { headers, body: b.body }); // warm
        const wall = [];
        const c0 = cpuNs(pid);
        for (let i = 0; i < b.n; i++) {
          const res = await request(url(t), { headers, body: b.body });
          if (res.status !== 200) throw new Error(`${t} ${b.label}: status ${res.status}`);
          wall.push(res.total);
        }
        const c1 = cpuNs(pid);
        round[t] = { cpu_ms: (c1 - c0) / 1e6 / b.n, wall_p50_ms: median(wall) };
      }
      out[b.label].rounds.push(round);
    }
    const rounds = out[b.label].rounds;
    for (const t of WORKERS) {
      const m = (f) => median(rounds.map((rd) => f(rd[t], rd)));
      out[b.label][t] = {
        cpu_ms: m((x) => x.cpu_ms),
        wall_p50_ms: m((x) => x.wall_p50_ms),
        cpu_over_js_pass_ms: m((x, rd) => x.cpu_ms - rd['js-pass'].cpu_ms),
        cpu_vs_js_inject: m((x, rd) => x.cpu_ms / rd['js-inject'].cpu_ms),
        wall_vs_js_inject: m((x, rd) => x.wall_p50_ms / rd['js-inject'].wall_p50_ms),
      };
    }
    log(`cpu ${b.label}:`, WORKERS.map((t) => `${t} ${out[b.label][t].cpu_ms.toFixed(3)} ms`).join(', '));
  }
  return out;
}

// ---------------------------------------------------------------------------
// 3c. Where mcpgate's per-request CPU goes: the same workerd CPU accounting on
// routes that switch on one stage at a time, mcpgate against js-pass.

async function breakdownPhase(pid, base, headers) {
  const noMcp = Buffer.from(JSON.stringify({ model: 'gpt-4.1', input: 'hi', tools: [TOOLS[2]] }));
  const withMcp = makeBody(2 * KB);
  const cases = [
    ['GET /healthz (no KV; js-pass: 404 before KV)', 'GET', '/healthz', null],
    ['GET /openai/v1/models (auth, KV, key swap, fetch)', 'GET', '/openai/v1/models', null],
    ['POST /responses, no MCP tool (read + check body, forward as is)', 'POST', '/openai/v1/responses', noMcp],
    ['POST /responses, 2 KB, 2 MCP tools (rewrite + response scrub)', 'POST', '/openai/v1/responses', withMcp],
  ];
  const n = SMOKE ? 30 : 300;
  const out = { n, cases: [] };
  for (const [label, method, p, body] of cases) {
    const per = { 'js-pass': [], mcpgate: [] };
    for (let r = 0; r < SETTINGS.rounds; r++) {
      for (const t of r % 2 ? ['mcpgate', 'js-pass'] : ['js-pass', 'mcpgate']) {
        const u = `${base[t]}${p}`;
        await request(u, { method, headers, body });
        const c0 = cpuNs(pid);
        for (let i = 0; i < n; i++) await request(u, { method, headers, body });
        per[t].push((cpuNs(pid) - c0) / 1e6 / n);
      }
    }
    const row = { label, js_pass_ms: median(per['js-pass']), mcpgate_ms: median(per.mcpgate) };
    row.extra_ms = median(per.mcpgate.map((m, i) => m - per['js-pass'][i]));
    out.cases.push(row);
    log(`breakdown ${label}: js-pass ${row.js_pass_ms.toFixed(3)} ms, mcpgate ${row.mcpgate_ms.toFixed(3)} ms`);
  }
  return out;
}

// ---------------------------------------------------------------------------
// 3d. The request-path cost of a per-user MCP server against a tenant-level
// one: the same 2 KB request naming one server, mcpgate only, interleaved.
// The per-user request is made with a user key (one more KV read: the user's
// credential record).

async function perUserPhase(pid, base, key, userKey) {
  const body = (label) => {
    const b = JSON.parse(makeBody(2 * KB));
    b.tools = [{ type: 'mcp', server_label: label }];
    return Buffer.from(JSON.stringify(b));
  };
  const cases = {
    tenant: { headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: body('crm') },
    per_user: { headers: { 'content-type': 'application/json', authorization: `Bearer ${userKey}` }, body: body('gh') },
  };
  const n = SMOKE ? 30 : 300;
  const per = { tenant: [], per_user: [] };
  const url = `${base}/openai/v1/responses`;
  for (let r = 0; r < SETTINGS.rounds; r++) {
    for (const c of r % 2 ? ['per_user', 'tenant'] : ['tenant', 'per_user']) {
      const { headers, body: b } = cases[c];
      const check = await request(`${url}?check=1`, { headers, body: b, keepBody: true });
      if (check.status !== 200 || check.headers['x-bench-injected'] !== '1') throw new Error(`per-user bench ${c}: ${check.status} ${check.body}`);
      const c0 = cpuNs(pid);
      for (let i = 0; i < n; i++) await request(url, { headers, body: b });
      per[c].push((cpuNs(pid) - c0) / 1e6 / n);
    }
  }
  const out = { n, tenant_ms: median(per.tenant), per_user_ms: median(per.per_user), ratio: median(per.per_user.map((x, i) => x / per.tenant[i])) };
  log(`per-user: tenant-level ${out.tenant_ms.toFixed(3)} ms, per-user ${out.per_user_ms.toFixed(3)} ms (${out.ratio.toFixed(2)}×)`);
  return out;
}

// ---------------------------------------------------------------------------
// 4a. TTFB on SSE: the emulator sends the first event at once and the rest
// after a delay, so the first body byte is the first event.

async function ttfbPhase(url, headers, body) {
  const q = `?r=sse&d=${SETTINGS.sseDelayMs}`;
  const samples = Object.fromEntries(TARGETS.map((t) => [t, []]));
  const failures = {};
  for (let i = 0; i < SETTINGS.ttfbN; i++) {
    for (const t of TARGETS) {
      const r = await request(url(t, q), { headers: t === 'direct' ? { ...headers, authorization: `Bearer ${PROVIDER_KEY}` } : headers, body });
      if (r.status !== 200 || r.bytes === 0) failures[t] = `status ${r.status}, ${r.bytes} body bytes`;
      samples[t].push(r.bytes > 0 ? r.ttfb : NaN);
    }
  }
  const out = { n: SETTINGS.ttfbN, delay_ms: SETTINGS.sseDelayMs };
  for (const t of TARGETS) {
    out[t] = {
      ttfb_p50_ms: median(samples[t]),
      ttfb_p90_ms: percentile(samples[t], 90),
      added_p50_ms: median(samples[t]) - median(samples.direct),
      // the first event must arrive before the delayed rest: streamed, not buffered
      streamed: median(samples[t]) < SETTINGS.sseDelayMs,
      error: failures[t] ?? null,
    };
  }
  log('ttfb p50:', TARGETS.map((t) => `${t} ${out[t].ttfb_p50_ms.toFixed(2)} ms`).join(', '));
  return out;
}

// ---------------------------------------------------------------------------
// 4b. A 100 MB streamed SSE response: throughput and workerd RSS while it flows.

async function streamPhase(pid, url, headers, body) {
  const q = `?r=big&mb=${SETTINGS.streamMB}`;
  const out = { mb: SETTINGS.streamMB, rounds: [] };
  for (let r = 0; r < SETTINGS.streamRounds; r++) {
    const round = {};
    for (const t of TARGETS) {
      const rss0 = rssBytes(pid);
      let peak = rss0;
      const samples = [];
      const timer = setInterval(() => {
        const v = rssBytes(pid);
        samples.push(v);
        if (v > peak) peak = v;
      }, 25);
      const res = await request(url(t, q), { headers: t === 'direct' ? { ...headers, authorization: `Bearer ${PROVIDER_KEY}` } : headers, body, timeoutMs: 30000 })
        .catch((e) => ({ status: 0, bytes: 0, total: NaN, error: String(e.message) }));
      clearInterval(timer);
      const rss1 = rssBytes(pid);
      await sleep(500);
      const rssKept = rssBytes(pid);
      const ok = res.status === 200 && res.bytes === SETTINGS.streamMB * MB;
      round[t] = {
        error: ok ? null : `status ${res.status}, ${res.bytes} of ${SETTINGS.streamMB * MB} bytes`,
        mb_per_s: res.bytes / MB / (res.total / 1000),
        seconds: res.total / 1000,
        rss_start_mb: rss0 / MB, rss_peak_mb: peak / MB, rss_end_mb: rss1 / MB,
        rss_growth_mb: (peak - rss0) / MB,
        rss_kept_mb: (rssKept - rss0) / MB,
      };
    }
    out.rounds.push(round);
  }
  for (const t of TARGETS) {
    const m = (f) => median(out.rounds.map((rd) => f(rd[t], rd)));
    out[t] = {
      error: out.rounds.map((rd) => rd[t].error).find((e) => e) ?? null,
      mb_per_s: m((x) => (x.error ? NaN : x.mb_per_s)),
      vs_direct: m((x, rd) => x.mb_per_s / rd.direct.mb_per_s),
      vs_js_pass: m((x, rd) => x.mb_per_s / rd['js-pass'].mb_per_s),
      rss_start_mb: m((x) => x.rss_start_mb),
      rss_peak_mb: m((x) => x.rss_peak_mb),
      rss_growth_mb: Math.max(...out.rounds.map((rd) => rd[t].rss_growth_mb)),
      rss_kept_mb: Math.max(...out.rounds.map((rd) => rd[t].rss_kept_mb)),
    };
  }
  log('stream MB/s:', TARGETS.map((t) => `${t} ${out[t].mb_per_s.toFixed(0)} (rss peak +${out[t].rss_growth_mb.toFixed(1)} MB, kept +${out[t].rss_kept_mb.toFixed(1)} MB)`).join(', '));
  return out;
}

// ---------------------------------------------------------------------------
// 5a. Startup: a fresh workerd (via Miniflare) with only one worker, time to
// ready and to the first answer; plus V8 compiling the wasm in this Node.

async function startupPhase(upstreamUrl) {
  const out = { reps: SETTINGS.startupReps };
  const samples = { mcpgate: { ready: [], first: [] }, 'js-pass': { ready: [], first: [] } };
  for (let r = 0; r < SETTINGS.startupReps; r++) {
    for (const w of ['js-pass', 'mcpgate']) {
      const t0 = process.hrtime.bigint();
      const mf = new Miniflare(miniflareOptions([w], upstreamUrl, { build: BUILD }));
      try {
        await mf.ready;
        const ready = Number(process.hrtime.bigint() - t0) / 1e6;
        const u = String(await mf.unsafeGetDirectURL(w)).replace(/\/$/, '');
        // mcpgate: /healthz (no KV); js-pass: an unknown route (404, no KV)
        const first = await request(`${u}${w === 'mcpgate' ? '/healthz' : '/nope'}`, { method: 'GET' });
        samples[w].ready.push(ready);
        samples[w].first.push(first.total);
      } finally {
        await mf.dispose();
      }
    }
  }
  for (const w of Object.keys(samples)) {
    out[w] = { ready_ms: median(samples[w].ready), first_request_ms: median(samples[w].first) };
  }
  out.mcpgate_extra_ready_ms = out.mcpgate.ready_ms - out['js-pass'].ready_ms;
  const wasm = readFileSync(path.join(BUILD, 'index_bg.wasm'));
  const compile = [];
  // Node 20's V8 needs these proposals switched on for wasm-bindgen's output.
  v8.setFlagsFromString('--experimental-wasm-gc');
  try {
    for (let i = 0; i < SETTINGS.wasmCompileReps; i++) {
      const t0 = process.hrtime.bigint();
      await WebAssembly.compile(wasm);
      compile.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  } catch (e) {
    out.v8_wasm_compile_error = String(e.message);
  }
  out.v8_wasm_compile_ms = median(compile);
  log(`startup: mcpgate ready ${out.mcpgate.ready_ms.toFixed(0)} ms (js-pass ${out['js-pass'].ready_ms.toFixed(0)} ms), first request ${out.mcpgate.first_request_ms.toFixed(1)} ms, wasm compile ${out.v8_wasm_compile_ms.toFixed(1)} ms`);
  return out;
}

// ---------------------------------------------------------------------------
// 5b. Bundle size from `wrangler deploy --dry-run`.

function bundlePhase(commands) {
  const dir = path.join(WORK, 'dry-run');
  const cmd = ['wrangler', 'deploy', '--dry-run', '--outdir', dir];
  commands.push(`npx ${cmd.join(' ').replace(WORK, path.relative(ROOT, WORK))}`);
  const r = run(path.join(ROOT, 'node_modules/.bin/wrangler'), cmd.slice(1), {
    cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' },
  });
  const text = r.stdout + r.stderr;
  const m = /Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/i.exec(text);
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const wasmFile = files.find((f) => f.endsWith('.wasm'));
  const wasm = wasmFile ? readFileSync(path.join(dir, wasmFile)) : readFileSync(path.join(ROOT, 'build/index_bg.wasm'));
  const out = {
    total_upload_kib: m ? Number(m[1]) : NaN,
    total_gzip_kib: m ? Number(m[2]) : NaN,
    wasm_kib: wasm.length / 1024,
    wasm_gzip_kib: gzipSync(wasm, { level: 9 }).length / 1024,
    files: files.map((f) => ({ name: f, kib: statSync(path.join(dir, f)).size / 1024 })),
  };
  if (!m) out.wrangler_output = text.slice(-2000);
  log(`bundle: total ${out.total_upload_kib} KiB / gzip ${out.total_gzip_kib} KiB; wasm ${out.wasm_kib.toFixed(0)} KiB / gzip ${out.wasm_gzip_kib.toFixed(0)} KiB`);
  return out;
}

// ---------------------------------------------------------------------------
// 3b. cargo bench: rewrite_responses vs serde_json::Value on the same bodies.

function cargoBenchPhase(bodyDir, commands) {
  // Smoke: the bench binary in the test profile (shares the unit tests' build), few iterations.
  const args = SMOKE ? ['test', '--locked', '--bench', 'rewrite'] : ['bench', '--locked', '--bench', 'rewrite'];
  commands.push(`MCPGATE_BENCH_BODIES=${path.relative(ROOT, bodyDir)} cargo ${args.join(' ')}`);
  log(`cargo ${args.join(' ')}`);
  const r = run('cargo', args, { cwd: ROOT, env: { ...process.env, MCPGATE_BENCH_BODIES: bodyDir, MCPGATE_BENCH_SMOKE: SMOKE ? '1' : '' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const rows = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^BENCH_JSON (.*)$/.exec(line);
    if (m) rows.push(JSON.parse(m[1]));
  }
  if (r.code !== 0 || !rows.length) {
    log(`cargo ${args[0]} failed (${r.code})`);
    return { profile: 'FAILED', error: `cargo ${args.join(' ')} exited ${r.code}`, rows: [{ size_label: 'n/a', rewrite_mbps: NaN }] };
  }
  return { profile: SMOKE ? 'test (debug; smoke only)' : 'bench (release profile: opt-level "z", LTO, as deployed)', rows };
}

// ---------------------------------------------------------------------------
// Report

const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const goal = (ok) => (ok === null ? '—' : ok ? 'met' : '**missed**');

function renderMarkdown(R) {
  const L = R.latency;
  const lines = [];
  lines.push(`# mcpgate benchmarks${R.mode === 'smoke' ? ' (SMOKE settings — numbers not meaningful)' : ''}`);
  lines.push('');
  lines.push(`Run ${R.machine.date} on ${R.machine.nproc} × ${R.machine.cpu_model} (${R.machine.mem_total_gb} GB, ${R.machine.kernel}); ` +
    `Node ${R.machine.node}, ${R.machine.rustc}, ${R.machine.workerd} via Miniflare ${R.machine.miniflare}, load: ${R.machine.wrk}. ` +
    `Whole run: ${f(R.elapsed_s, 0)} s.`);
  lines.push('');
  lines.push(`Build measured: git ${R.build.git_head}${R.build.git_dirty ? ' + uncommitted changes in src/' : ''}, \`build/index_bg.wasm\` of ${R.build.wasm_mtime} (sha256 ${R.build.wasm_sha256.slice(0, 12)}…), snapshotted at start.`);
  lines.push('');
  lines.push(`Core split: ${Object.entries(R.core_split).map(([k, v]) => `${k} → ${v}`).join('; ')}. ` +
    `Ratios are medians over ${R.settings.rounds} interleaved rounds (each round runs every target in rotated order) of per-round ratios against the same round's baseline.`);
  lines.push('');
  lines.push('## Goals');
  lines.push('');
  lines.push('| figure | goal | measured | |');
  lines.push('|---|---|---|---|');
  const mg = (phase) => L[phase].mcpgate;
  const cpuRatios = ['2 KB', '100 KB', '1 MB', '10 MB'].filter((k) => R.cpu[k]).map((k) => [k, R.cpu[k].mcpgate.cpu_vs_js_inject]);
  const prose = R.cpu['1 MiB prose'] ?? R.cpu['100 KB prose'];
  const proseLabel = R.cpu['1 MiB prose'] ? '1 MiB' : '100 KB (smoke)';
  const noTools = R.breakdown?.cases.find((c) => c.label.includes('no MCP tool'));
  const sm = R.stream.mcpgate;
  const rows = [
    [`req/s at saturation (${R.settings.satConns} conns), 2 KB MCP request, vs js-pass / vs js-inject`, '≥ 0.9× / ≥ 1.0×',
      `${f(mg('sat').rps_vs_js_pass)}× / ${f(mg('sat').rps_vs_js_inject)}× (${f(mg('sat').rps, 0)} vs ${f(L.sat['js-pass'].rps, 0)} / ${f(L.sat['js-inject'].rps, 0)} req/s)`,
      mg('sat').rps_vs_js_pass >= 0.9 && mg('sat').rps_vs_js_inject >= 1],
    ['workerd CPU per request vs js-inject, by body size', '≤ 1.0× at every size', cpuRatios.map(([k, c]) => `${k}: ${f(c)}×`).join('; '), cpuRatios.every(([, c]) => c <= 1)],
    [`${proseLabel} conversation of escaped prose, CPU per request`, '≤ 5 ms and ≤ js-inject',
      prose ? `${f(prose.mcpgate.cpu_ms, 3)} ms (js-inject ${f(prose['js-inject'].cpu_ms, 3)}, js-pass ${f(prose['js-pass'].cpu_ms, 3)})` : 'n/a',
      prose ? prose.mcpgate.cpu_ms <= 5 && prose.mcpgate.cpu_vs_js_inject <= 1 : null],
    [`memory kept after a ${R.stream.mb} MiB scrubbed SSE answer (peak during it)`, '< 5 MB growth',
      `+${f(sm.rss_kept_mb, 1)} MB (peak +${f(sm.rss_growth_mb, 1)} MB; js-pass +${f(R.stream['js-pass'].rss_kept_mb, 1)} MB)`, sm.rss_kept_mb < 5],
    ['`POST /responses` without MCP tools, CPU over js-pass', '≤ +0.15 ms', noTools ? `+${f(noTools.extra_ms, 3)} ms` : 'n/a', noTools ? noTools.extra_ms <= 0.15 : null],
    ['added latency p50 at 1 conn', '≤ 1.15× js-pass', `${f(mg('low').added_p50_ms, 3)} ms (js-pass ${f(L.low['js-pass'].added_p50_ms, 3)} ms: ${f(mg('low').added_p50_ms / L.low['js-pass'].added_p50_ms)}×)`,
      mg('low').added_p50_ms <= 1.15 * L.low['js-pass'].added_p50_ms],
    ['scrubbed + metered SSE throughput vs js-pass', '≥ 0.8×', `${f(sm.vs_js_pass)}× (${f(sm.mb_per_s, 0)} vs ${f(R.stream['js-pass'].mb_per_s, 0)} MB/s)`, sm.vs_js_pass >= 0.8],
    ['first request after a fresh start', '≤ 5 ms', `${f(R.startup.mcpgate.first_request_ms, 2)} ms (js-pass ${f(R.startup['js-pass'].first_request_ms, 2)} ms)`, R.startup.mcpgate.first_request_ms <= 5],
    ['TTFB added on SSE (p50)', '≤ 5 ms', `${f(R.ttfb.mcpgate.added_p50_ms, 3)} ms (js-pass ${f(R.ttfb['js-pass'].added_p50_ms, 3)} ms)`, R.ttfb.mcpgate.added_p50_ms <= 5],
    ['bundle, total upload gzip', '≤ 250 KiB', `${f(R.bundle.total_gzip_kib, 1)} KiB (wasm alone ${f(R.bundle.wasm_gzip_kib, 1)} KiB gzip)`, R.bundle.total_gzip_kib <= 250],
  ];
  for (const [a, b, c, ok] of rows) lines.push(`| ${a} | ${b} | ${c} | ${goal(ok)} |`);
  lines.push('');
  lines.push('"Kept" is the workerd RSS half a second after the answer ended, minus the RSS before it.');
  lines.push('');

  lines.push('## 1–2. Latency and throughput (2 KB `POST /openai/v1/responses` body, two MCP servers to inject)');
  lines.push('');
  for (const [phase, title] of [['low', 'Low load: 1 connection, closed loop'], ['sat', `Saturation: ${R.settings.satConns} connections`]]) {
    lines.push(`**${title}** (${R.loadgen}, ${phase === 'low' ? R.settings.lowSeconds : R.settings.satSeconds} s per target per round)`);
    lines.push('');
    lines.push('| target | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s | vs js-pass | vs js-inject | requests | errors |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const t of TARGETS) {
      const x = L[phase][t];
      lines.push(`| ${t} | ${f(x.p50_ms, 3)} | ${f(x.p99_ms, 3)} | ${t === 'direct' ? '—' : f(x.added_p50_ms, 3)} | ${t === 'direct' ? '—' : f(x.added_p99_ms, 3)} | ${f(x.rps, 0)} | ${f(x.rps_vs_js_pass)}× | ${f(x.rps_vs_js_inject)}× | ${x.requests} | ${x.errors} |`);
    }
    lines.push('');
  }
  lines.push('![latency percentiles](latency.png)');
  lines.push('');

  lines.push('## 3. CPU time per request inside workerd, by request body size');
  lines.push('');
  lines.push('Method: workerd runs alone on its core; the CPU time of all its threads (`/proc/PID/task/*/schedstat`, ns) is read before and after N sequential requests of one target; the difference / N is the CPU per request. It is everything workerd does for the request — HTTP in, the KV read, the worker itself, the upstream fetch — so js-pass (same path without the rewrite) is the floor and *over js-pass* isolates the rewrite plus tenant decryption. Wall = client-side p50. (In-isolate timers are frozen between I/O in workerd, so they cannot time CPU work.)');
  lines.push('');
  lines.push('| body | target | N | workerd CPU ms/req | over js-pass ms | CPU vs js-inject | wall p50 ms | wall vs js-inject |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const [label, c] of Object.entries(R.cpu)) {
    for (const t of WORKERS) {
      const x = c[t];
      lines.push(`| ${label} (${f(c.size / 1024, 0)} KiB) | ${t} | ${c.n} × ${R.settings.rounds} | ${f(x.cpu_ms, 3)} | ${t === 'js-pass' ? '—' : f(x.cpu_over_js_pass_ms, 3)} | ${f(x.cpu_vs_js_inject)}× | ${f(x.wall_p50_ms, 2)} | ${f(x.wall_vs_js_inject)}× |`);
    }
  }
  lines.push('');
  if (R.breakdown) {
    lines.push(`**Where mcpgate's CPU goes** (same accounting, N = ${R.breakdown.n} × ${R.settings.rounds} rounds, each route switching on one more stage):`);
    lines.push('');
    lines.push('| route | js-pass CPU ms/req | mcpgate CPU ms/req | mcpgate extra ms |');
    lines.push('|---|---|---|---|');
    for (const c of R.breakdown.cases) lines.push(`| ${c.label} | ${f(c.js_pass_ms, 3)} | ${f(c.mcpgate_ms, 3)} | ${f(c.extra_ms, 3)} |`);
    lines.push('');
  }
  if (R.per_user) {
    const p = R.per_user;
    lines.push(`**A per-user MCP server against a tenant-level one** (the same 2 KB request naming one server; mcpgate's workerd CPU, N = ${p.n} × ${R.settings.rounds} rounds, interleaved): tenant-level ${f(p.tenant_ms, 3)} ms, per-user (a user key; one more KV read) ${f(p.per_user_ms, 3)} ms: ${f(p.ratio)}×.`);
    lines.push('');
  }
  lines.push(`**Native core (\`cargo bench --bench rewrite\`, ${R.rewrite.profile}), same bodies:** MB/s, median of runs.`);
  lines.push('');
  lines.push('| body | serde_json::Value parse | check_strict | strict_object | rewrite_responses | rewrite vs Value parse | open_tenant + sha256 µs |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const x of R.rewrite.rows) {
    lines.push(`| ${x.size_label} (${f(x.bytes / 1024, 0)} KiB) | ${f(x.serde_value_mbps, 0)} | ${f(x.check_strict_mbps, 0)} | ${f(x.strict_object_mbps, 0)} | ${f(x.rewrite_mbps, 0)} | ${f(x.rewrite_vs_serde_value)}× | ${f(x.open_tenant_us, 1)} |`);
  }
  lines.push('');

  lines.push(`## 4. Streaming`);
  lines.push('');
  lines.push(`**TTFB on SSE** (\`?r=sse\`: the emulator sends the first event at once and the rest ${R.ttfb.delay_ms} ms later; N = ${R.ttfb.n} per target, interleaved):`);
  lines.push('');
  lines.push('| target | TTFB p50 ms | TTFB p90 ms | added p50 ms | first event before the rest |');
  lines.push('|---|---|---|---|---|');
  for (const t of TARGETS) {
    const x = R.ttfb[t];
    lines.push(`| ${t} | ${f(x.ttfb_p50_ms, 3)} | ${f(x.ttfb_p90_ms, 3)} | ${t === 'direct' ? '—' : f(x.added_p50_ms, 3)} | ${x.error ? `**FAILED: ${x.error}**` : x.streamed ? 'yes' : 'NO (buffered)'} |`);
  }
  lines.push('');
  lines.push(`**${R.stream.mb} MiB SSE response**, scrubbed and metered by mcpgate (64 KiB chunks, read by a Node client; RSS of the workerd process sampled every 25 ms; ${R.settings.streamRounds} rounds):`);
  lines.push('');
  lines.push('| target | MB/s | vs direct | vs js-pass | workerd RSS before MB | peak MB | max growth MB | kept MB |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const t of TARGETS) {
    const x = R.stream[t];
    lines.push(`| ${t} | ${x.error ? `**FAILED: ${x.error}**` : f(x.mb_per_s, 0)} | ${f(x.vs_direct)}× | ${f(x.vs_js_pass)}× | ${t === 'direct' ? '—' : f(x.rss_start_mb, 1)} | ${t === 'direct' ? '—' : f(x.rss_peak_mb, 1)} | ${t === 'direct' ? '(not in workerd)' : f(x.rss_growth_mb, 1)} | ${t === 'direct' ? '—' : f(x.rss_kept_mb, 1)} |`);
  }
  lines.push('');

  lines.push('## 5. Bundle and startup');
  lines.push('');
  lines.push(`- \`wrangler deploy --dry-run\`: total upload ${f(R.bundle.total_upload_kib, 1)} KiB, gzip ${f(R.bundle.total_gzip_kib, 1)} KiB; wasm ${f(R.bundle.wasm_kib, 1)} KiB, gzip -9 ${f(R.bundle.wasm_gzip_kib, 1)} KiB.`);
  lines.push(`- Fresh workerd with only that worker (Miniflare \`new\` → \`ready\`, median of ${R.startup.reps}): mcpgate ${f(R.startup.mcpgate.ready_ms, 0)} ms, js-pass ${f(R.startup['js-pass'].ready_ms, 0)} ms (mcpgate's extra: ${f(R.startup.mcpgate_extra_ready_ms, 0)} ms); first request after ready: mcpgate ${f(R.startup.mcpgate.first_request_ms, 2)} ms (\`/healthz\`), js-pass ${f(R.startup['js-pass'].first_request_ms, 2)} ms.`);
  lines.push(R.startup.v8_wasm_compile_error
    ? `- V8 in Node ${R.machine.node} cannot compile \`index_bg.wasm\` (${R.startup.v8_wasm_compile_error.slice(0, 120)}): workerd's figures above are the startup measure.`
    : `- V8 (Node ${R.machine.node}) compiling \`index_bg.wasm\`: ${f(R.startup.v8_wasm_compile_ms, 1)} ms (median of ${R.settings.wasmCompileReps}).`);
  lines.push('');

  lines.push('## Exact commands');
  lines.push('');
  lines.push('```');
  lines.push(R.mode === 'smoke' ? 'make bench-smoke   # = bash bench/bench.sh smoke' : 'make bench   # = bash bench/bench.sh full');
  lines.push(`node bench/run.mjs --mode ${R.mode} --out ${path.relative(ROOT, OUT) || '.'}`);
  for (const c of R.commands) lines.push(c);
  lines.push('bench/.venv/bin/python bench/plot.py bench/results.json bench/latency.png');
  lines.push('```');
  lines.push('');
  lines.push('Targets: **direct** `POST {upstream}/v1/responses`; **js-pass** (`bench/workers/js-pass.mjs`), **js-inject** (`bench/workers/js-inject.mjs`) and **mcpgate** (`build/worker/shim.mjs` + `build/index.js` + `build/index_bg.wasm`, seeded through its admin API) `POST {worker}/openai/v1/responses`, each worker on its own Miniflare direct socket. Upstream: `bench/upstream` (Rust std, thread per connection, keep-alive).');
  lines.push('');
  lines.push('Settings: `' + JSON.stringify(R.settings) + '`');
  lines.push('');
  return lines.join('\n');
}

/** bench-smoke's only assertion: every figure is a number. */
function checkNumbers(R) {
  const bad = [];
  const need = (name, v) => {
    if (!Number.isFinite(v)) bad.push(name);
  };
  for (const phase of ['low', 'sat']) for (const t of TARGETS) {
    need(`latency.${phase}.${t}.p50`, R.latency[phase][t].p50_ms);
    need(`latency.${phase}.${t}.rps`, R.latency[phase][t].rps);
  }
  for (const [k, c] of Object.entries(R.cpu)) for (const t of WORKERS) need(`cpu.${k}.${t}`, c[t].cpu_ms);
  for (const t of TARGETS) {
    need(`ttfb.${t}`, R.ttfb[t].ttfb_p50_ms);
    need(`stream.${t}`, R.stream[t].mb_per_s);
  }
  need('startup.mcpgate', R.startup.mcpgate.ready_ms);
  need('per_user.ratio', R.per_user.ratio);
  need('bundle.total_gzip', R.bundle.total_gzip_kib);
  need('bundle.wasm_gzip', R.bundle.wasm_gzip_kib);
  for (const x of R.rewrite.rows) need(`rewrite.${x.size_label}`, x.rewrite_mbps);
  if (bad.length) throw new Error(`missing figures: ${bad.join(', ')}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
