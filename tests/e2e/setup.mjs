// The tenants most gateway test files share, on one stack.
//
//  acme     openai + anthropic keys; MCP servers:
//             crm     bearer TA, allowed_tools [whoami, search, lookup], require_approval never
//             strict  same server, bearer TA, no allowed_tools, require_approval always
//             files   header credential X-Api-Key: HA, require_approval never
//             public  no auth, require_approval never
//  globex   openai + anthropic keys; crm -> the same MCP server with bearer TB, require_approval never
//  oaionly  openai key only;  antonly  anthropic key only
//  open     both keys, no servers, allow_unmanaged_mcp_servers: true

import assert from 'node:assert/strict';
import { startStack, newSecret, SECRETS, findSecrets } from './harness.mjs';

export async function standardStack({ vars = {}, delayMs = 100 } = {}) {
  const TA = newSecret('acme crm token', 'mcp_tok_');
  const TB = newSecret('globex crm token', 'mcp_tok_');
  const HA = newSecret('acme files header', 'hdr_');
  const stack = await startStack({
    vars,
    delayMs,
    mcp: {
      crm: { type: 'bearer', tokens: [TA, TB] },
      files: { type: 'headers', headers: { 'X-Api-Key': HA } },
      public: { type: 'none' },
    },
  });
  const { gw, servers } = stack;
  const pk = {
    acmeOpenai: stack.openaiKey('acme'),
    acmeAnthropic: stack.anthropicKey('acme'),
    globexOpenai: stack.openaiKey('globex'),
    globexAnthropic: stack.anthropicKey('globex'),
    oaionlyOpenai: stack.openaiKey('oaionly'),
    antonlyAnthropic: stack.anthropicKey('antonly'),
    openOpenai: stack.openaiKey('open'),
    openAnthropic: stack.anthropicKey('open'),
  };
  const tenants = {
    acme: {
      providers: { openai: { api_key: pk.acmeOpenai }, anthropic: { api_key: pk.acmeAnthropic } },
      mcp_servers: {
        crm: { url: servers.crm.url, auth: { type: 'bearer', token: TA }, allowed_tools: ['whoami', 'search', 'lookup'], require_approval: 'never' },
        strict: { url: servers.crm.url, auth: { type: 'bearer', token: TA }, require_approval: 'always' },
        files: { url: servers.files.url, auth: { type: 'headers', headers: { 'X-Api-Key': HA } }, require_approval: 'never' },
        public: { url: servers.public.url, auth: { type: 'none' }, require_approval: 'never' },
      },
    },
    globex: {
      providers: { openai: { api_key: pk.globexOpenai }, anthropic: { api_key: pk.globexAnthropic } },
      mcp_servers: {
        crm: { url: servers.crm.url, auth: { type: 'bearer', token: TB }, require_approval: 'never' },
      },
    },
    oaionly: { providers: { openai: { api_key: pk.oaionlyOpenai } } },
    antonly: { providers: { anthropic: { api_key: pk.antonlyAnthropic } } },
    open: {
      providers: { openai: { api_key: pk.openOpenai }, anthropic: { api_key: pk.openAnthropic } },
      allow_unmanaged_mcp_servers: true,
    },
  };
  const keys = {};
  for (const [id, body] of Object.entries(tenants)) {
    await gw.putTenant(id, body);
    keys[id] = (await gw.createKey(id)).key;
  }
  return { stack, gw, servers, TA, TB, HA, pk, keys, tenants };
}

/** Labels of gateway keys and admin secrets, which must never reach a provider or MCP server. */
function gatewaySideSecrets() {
  return new Map([...SECRETS].filter(([, l]) => l.startsWith('gateway key') || l === 'admin-token' || l === 'MASTER_KEY'));
}

/**
 * Asserts no gateway key, admin token or master key appears in any request a
 * provider emulator or MCP server received.
 */
export function assertNothingGatewaySideUpstream(stack) {
  const secrets = gatewaySideSecrets();
  const leaks = [];
  for (const r of stack.providers.history()) {
    const text = Buffer.concat([Buffer.from(JSON.stringify(r.rawHeaders) + r.url), r.body]);
    for (const l of findSecrets(text, secrets)) leaks.push(`${r.provider} ${r.method} ${r.url}: ${l}`);
  }
  for (const s of Object.values(stack.servers)) {
    for (const c of s.history) {
      for (const l of findSecrets(JSON.stringify(c), secrets)) leaks.push(`mcp ${s.name}: ${l}`);
    }
  }
  assert.deepEqual(leaks, [], 'gateway-side secrets reached upstream');
  assert.ok(stack.providers.history().length > 0, 'the emulators saw requests');
}

/** Every header name of a recorded request, lowercased, with repetitions. */
export function headerNames(rec) {
  const out = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) out.push(rec.rawHeaders[i].toLowerCase());
  return out;
}

/** Values of one header in a recorded request, as separate raw lines. */
export function headerValues(rec, name) {
  const out = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if (rec.rawHeaders[i].toLowerCase() === name) out.push(rec.rawHeaders[i + 1]);
  return out;
}
