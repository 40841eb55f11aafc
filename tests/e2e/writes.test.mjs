// Admin writes are serialized per tenant (one Durable Object per tenant does
// the read-modify-write of KV): 50 key creations racing 50 tenant PUTs leave
// every returned key listed, working with the latest config, revocable, and
// dead after the tenant is deleted.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { test, startStack, assertNoLeaks } from './harness.mjs';

const N = 50;
let stack;
let gw;
const providerKeys = [];

before(async () => {
  stack = await startStack({ delayMs: 5 });
  gw = stack.gw;
  for (let i = 0; i < N + 1; i++) providerKeys.push(stack.openaiKey(`race ${i}`));
});

after(async () => {
  await stack?.close();
});

const body = (i) => ({ providers: { openai: { api_key: providerKeys[i] } }, rate_limit: { requests_per_minute: 100000 } });

/** The provider key the gateway used for one request made with `key`. */
async function providerKeyUsedBy(key) {
  stack.reset();
  const r = await gw.request('POST', '/openai/v1/chat/completions', {
    headers: { authorization: `Bearer ${key}` },
    body: { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] },
  });
  assert.equal(r.status, 200, r.text);
  const seen = stack.providers.all();
  assert.equal(seen.length, 1);
  return seen[0].headers.authorization;
}

let created;

test(`${N} concurrent key creations racing ${N} tenant PUTs: every key is listed and sees the latest config`, async () => {
  await gw.putTenant('race', body(0));
  const puts = Array.from({ length: N }, (_, i) => gw.admin('PUT', '/admin/tenants/race', body(i + 1)));
  const posts = Array.from({ length: N }, () => gw.admin('POST', '/admin/tenants/race/keys', undefined, { fetchImpl: fetch }));
  const [putRes, postRes] = await Promise.all([Promise.all(puts), Promise.all(posts)]);
  for (const r of putRes) assert.equal(r.status, 200, r.text);
  for (const r of postRes) assert.equal(r.status, 201, r.text);
  created = postRes.map((r) => r.json);
  assert.equal(new Set(created.map((k) => k.id)).size, N);

  const list = await gw.admin('GET', '/admin/tenants/race/keys');
  assert.equal(list.status, 200);
  const listed = new Set(list.json.keys.map((k) => k.id));
  const missing = created.filter((k) => !listed.has(k.id)).map((k) => k.id);
  assert.deepEqual(missing, [], 'every returned key is listed');
  assert.equal(listed.size, N);

  // Every key record carries the same (latest) tenant config.
  const used = new Set();
  for (const k of created) used.add(await providerKeyUsedBy(k.key));
  assert.equal(used.size, 1, `keys disagree on the tenant config: ${used.size} provider keys in use`);
  const tenantNow = providerKeys.map((p) => `Bearer ${p}`);
  assert.ok(tenantNow.includes([...used][0]));
});

test('every raced key is revocable, and the rest die with the tenant', async () => {
  const half = created.slice(0, N / 2);
  const rest = created.slice(N / 2);
  const revoked = await Promise.all(half.map((k) => gw.admin('DELETE', `/admin/tenants/race/keys/${k.id}`)));
  for (const r of revoked) assert.equal(r.status, 204, r.text);
  for (const k of half.slice(0, 5)) {
    const r = await gw.request('GET', '/openai/v1/models', { headers: { authorization: `Bearer ${k.key}` } });
    assert.equal(r.status, 401);
  }
  const list = await gw.admin('GET', '/admin/tenants/race/keys');
  assert.deepEqual(new Set(list.json.keys.map((k) => k.id)), new Set(rest.map((k) => k.id)));
  // Deletion racing more key creations: nothing outlives the tenant.
  const late = Array.from({ length: 10 }, () => gw.admin('POST', '/admin/tenants/race/keys', undefined, { fetchImpl: fetch }));
  const del = gw.deleteTenant('race');
  const lateRes = await Promise.all(late);
  assert.equal((await del).status, 204);
  const lateKeys = lateRes.filter((r) => r.status === 201).map((r) => r.json.key);
  for (const r of lateRes) assert.ok([201, 404].includes(r.status), r.text);
  const survivors = [];
  for (const key of [...rest.map((k) => k.key), ...lateKeys]) {
    const r = await gw.request('GET', '/openai/v1/models', { headers: { authorization: `Bearer ${key}` } });
    if (r.status !== 401) survivors.push(r.status);
  }
  // A creation ordered after the deletion answers 404 (no tenant); one ordered before it is deleted with it.
  const again = await gw.getTenant('race');
  if (again.status === 404) assert.deepEqual(survivors, [], 'no key outlives its tenant');
  else assert.fail('the tenant was re-created');
});

test('no leaks', async () => {
  await assertNoLeaks(stack);
});
