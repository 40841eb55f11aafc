// `make reseal`: re-seals every stored secret under the current MASTER_KEY by
// walking POST /admin/maintenance/reseal page by page, then counts with GET
// (a second full walk) and fails unless nothing is left under another key.
//
//   MCPGATE_URL=https://gw.example.com ADMIN_TOKEN=... make reseal
//   RESEAL_LIMIT (tenants per page, 1-100, default 20)
//
// Prints one JSON line per page and a summary line; never prints a secret
// (the endpoint returns none).

const base = (process.env.MCPGATE_URL ?? '').replace(/\/+$/, '');
const token = process.env.ADMIN_TOKEN ?? '';
const limit = process.env.RESEAL_LIMIT ?? '20';
if (!base || !token) {
  console.error('set MCPGATE_URL (the gateway origin) and ADMIN_TOKEN');
  process.exit(2);
}

async function page(method, cursor) {
  const q = new URLSearchParams({ limit });
  if (cursor) q.set('cursor', cursor);
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`${base}/admin/maintenance/reseal?${q}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
    });
    const text = await res.text();
    if (res.ok) return JSON.parse(text);
    // A page is safe to repeat: retry transient failures a few times.
    if (attempt >= 3 || res.status < 500) throw new Error(`${method} reseal: ${res.status} ${text}`);
    await new Promise((r) => setTimeout(r, 1000 * attempt));
  }
}

async function walk(method) {
  const total = { tenants: 0, not_current: 0, errors: [], resealed: { tenant_records: 0, gateway_key_records: 0, oauth_states: 0 }, sealed: {} };
  let cursor = null;
  let key = null;
  do {
    const p = await page(method, cursor);
    console.log(JSON.stringify({ method, ...p }));
    key = { key_id: p.key_id, previous_key_id: p.previous_key_id };
    total.tenants += p.tenants;
    total.not_current += p.not_current;
    total.errors.push(...p.errors);
    for (const [k, v] of Object.entries(p.resealed ?? {})) total.resealed[k] += v;
    for (const [k, v] of Object.entries(p.sealed)) total.sealed[k] = (total.sealed[k] ?? 0) + v;
    cursor = p.cursor;
  } while (cursor);
  return { ...key, ...total };
}

const started = Date.now();
const done = await walk('POST');
const seconds = (Date.now() - started) / 1000;
const check = await walk('GET');
const records = done.resealed.tenant_records + done.resealed.gateway_key_records + done.resealed.oauth_states;
const summary = {
  summary: true,
  key_id: check.key_id,
  previous_key_id: check.previous_key_id,
  tenants: check.tenants,
  records_resealed: records,
  seconds,
  records_per_second: seconds > 0 ? Math.round((records / seconds) * 10) / 10 : null,
  sealed: check.sealed,
  not_current: check.not_current,
  errors: [...done.errors, ...check.errors],
};
console.log(JSON.stringify(summary));
if (summary.not_current > 0 || summary.errors.length > 0) {
  console.error(`${summary.not_current} secrets are still sealed under another key; MASTER_KEY_PREVIOUS must stay set.`);
  process.exit(1);
}
console.error('Every secret is sealed under the current MASTER_KEY: MASTER_KEY_PREVIOUS can be removed.');
