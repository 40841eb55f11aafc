// Helpers for bench/run.mjs: processes, /proc accounting, HTTP clients, load
// generators (wrk, or a built-in Node one when wrk is absent), statistics.

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Statistics

export function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Percentile (0–100) of an unsorted array, nearest-rank. */
export function percentile(xs, p) {
  const v = [...xs].sort((a, b) => a - b);
  if (!v.length) return NaN;
  const i = Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1));
  return v[i];
}

export const PCTS = [1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 95, 97.5, 99, 99.5, 99.9];

// ---------------------------------------------------------------------------
// Processes and /proc

export function which(cmd) {
  return spawnSync('bash', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null;
}

export const HAVE_TASKSET = !!which('taskset');

/** Pins every thread of `pid` to `cpus` ("0", "1", "0,1"); no-op without taskset. */
export function pin(pid, cpus) {
  if (!HAVE_TASKSET || cpus == null) return false;
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  return r.status === 0;
}

/** Children of `ppid` whose comm is `name`. */
export function childPids(ppid, name) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid && comm === name) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** CPU time of all threads of `pid` in nanoseconds (sum of /proc/PID/task/*\/schedstat). */
export function cpuNs(pid) {
  let total = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* thread gone */
    }
  }
  return total;
}

/** Resident set size in bytes. */
export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Spawns a long-running process, resolves once a stdout line matches `ready`. */
export function startProcess(cmd, args, { ready, env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: env ?? process.env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} not ready in 30 s: ${buf}${err}`)), 30000);
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      buf += d;
      const m = ready.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}): ${buf}${err}`));
    });
  });
}

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// ---------------------------------------------------------------------------
// HTTP

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * One request; resolves with status, headers, byte count and timings (ms, from
 * just before the request is written): `ttfb` = first body byte, `total` = end.
 */
export function request(url, { method = 'POST', headers = {}, body, keepBody = false, agent: ag = agent, onData, timeoutMs = 120000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const t0 = process.hrtime.bigint();
    const hdrs = { ...headers };
    if (body != null) hdrs['content-length'] = Buffer.byteLength(body);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: hdrs, agent: ag },
      (res) => {
        const tHead = process.hrtime.bigint();
        let tFirst = null;
        let bytes = 0;
        const chunks = [];
        res.on('data', (c) => {
          if (tFirst === null) tFirst = process.hrtime.bigint();
          bytes += c.length;
          if (keepBody) chunks.push(c);
          if (onData) onData(c, bytes);
        });
        res.on('end', () => {
          const tEnd = process.hrtime.bigint();
          const ms = (t) => (t === null ? NaN : Number(t - t0) / 1e6);
          resolve({
            status: res.statusCode,
            headers: res.headers,
            bytes,
            body: keepBody ? Buffer.concat(chunks) : null,
            head: ms(tHead),
            ttfb: ms(tFirst),
            total: ms(tEnd),
          });
        });
        res.on('error', reject);
        res.on('aborted', () => reject(new Error(`response aborted: ${url}`)));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no progress for ${timeoutMs} ms: ${url}`)));
    req.on('error', reject);
    if (body != null) req.end(body);
    else req.end();
  });
}

// ---------------------------------------------------------------------------
// Load generators. Both return
//   {tool, requests, seconds, rps, errors, non2xx, p: {"50": µs, ...}, mean_us, max_us}

export function wrkScript(file, { method, headers, bodyFile }) {
  const lines = [`wrk.method = ${JSON.stringify(method)}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  if (bodyFile) lines.push(`local f = io.open(${JSON.stringify(bodyFile)}, "rb")`, 'wrk.body = f:read("*a")', 'f:close()');
  lines.push(
    `local pcts = {${PCTS.join(', ')}}`,
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'WRK_JSON {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"mean_us":%f,"max_us":%d,"p":{\',',
    '    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status, latency.mean, latency.max))',
    '  for i, q in ipairs(pcts) do',
    '    io.write(string.format(\'%s"%s":%d\', i > 1 and "," or "", tostring(q), latency:percentile(q)))',
    '  end',
    '  io.write("}}\\n")',
    'end',
  );
  writeFileSync(file, lines.join('\n') + '\n');
}

/** Runs wrk asynchronously (this process must keep serving workerd's stdio pipes). */
export async function runWrk({ url, script, conns, seconds, cpus }) {
  const args = ['-t1', `-c${conns}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, url];
  const r = cpus != null && HAVE_TASKSET ? await runAsync('taskset', ['-c', cpus, 'wrk', ...args]) : await runAsync('wrk', args);
  const m = /WRK_JSON (\{.*\})/.exec(r.stdout);
  if (!m) throw new Error(`wrk failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(m[1]);
  // Lua may print integer-valued floats as e.g. "50.0"; normalize to "50".
  const p = {};
  for (const [k, v] of Object.entries(j.p)) p[String(Number(k))] = v;
  const secs = j.duration_us / 1e6;
  return { tool: 'wrk', requests: j.requests, seconds: secs, rps: j.requests / secs, errors: j.errors, non2xx: j.non2xx, p, mean_us: j.mean_us, max_us: j.max_us };
}

export function runAsync(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Closed-loop load from this process: `conns` keep-alive connections, `requests` in total. */
export async function runNodeLoad({ url, method, headers, body, conns, requests }) {
  const ag = new http.Agent({ keepAlive: true, maxSockets: conns });
  const lat = [];
  let errors = 0;
  let non2xx = 0;
  let next = 0;
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (next < requests) {
      next++;
      const s = process.hrtime.bigint();
      try {
        const r = await request(url, { method, headers, body, agent: ag });
        if (r.status < 200 || r.status > 399) non2xx++;
      } catch {
        errors++;
      }
      lat.push(Number(process.hrtime.bigint() - s) / 1e3);
    }
  }
  await Promise.all(Array.from({ length: conns }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  ag.destroy();
  const p = {};
  for (const q of PCTS) p[String(q)] = percentile(lat, q);
  return { tool: 'node', requests: lat.length, seconds: secs, rps: lat.length / secs, errors, non2xx, p, mean_us: lat.reduce((a, b) => a + b, 0) / lat.length, max_us: Math.max(...lat) };
}
