// `make dev`: serves mcpgate on http://127.0.0.1:8787 under `wrangler dev` with local KV,
// seeds a demo tenant and prints its gateway key and a working curl.
//
// Without OPENAI_API_KEY / ANTHROPIC_API_KEY in the environment it runs in demo mode:
// the provider emulators and an MCP server from tests/emulators stand in for the real
// APIs on loopback, so the printed curl works offline. With a key set, that provider is
// the real one and the demo MCP server is DeepWiki's public server.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const PORT = Number(process.env.PORT ?? 8787);
const GW = `http://127.0.0.1:${PORT}`;
const STATE = '.wrangler/state';
const SECRETS = '.wrangler/dev-secrets.json';

mkdirSync('.wrangler', { recursive: true });
const secrets = existsSync(SECRETS) ? JSON.parse(readFileSync(SECRETS, 'utf8')) : {
  ADMIN_TOKEN: `adm_${randomBytes(24).toString('base64url')}`,
  MASTER_KEY: randomBytes(32).toString('base64'),
};
writeFileSync(SECRETS, JSON.stringify(secrets, null, 2), { mode: 0o600 });

const children = [];
const closers = [];
const realOpenAI = process.env.OPENAI_API_KEY;
const realAnthropic = process.env.ANTHROPIC_API_KEY;
const demo = !realOpenAI && !realAnthropic;

let openaiBase = 'https://api.openai.com';
let anthropicBase = 'https://api.anthropic.com';
let mcpServers;
const providers = {};
if (demo) {
  const { startProviders } = await import('../tests/emulators/provider.mjs');
  const { startMcpServer } = await import('../tests/emulators/mcp-server.mjs');
  const emu = await startProviders({ openaiKeys: ['sk-demo-openai'], anthropicKeys: ['sk-demo-anthropic'], delayMs: 150 });
  const mcpToken = `demo_mcp_${randomBytes(12).toString('hex')}`;
  const mcp = await startMcpServer({ name: 'crm', auth: { type: 'bearer', token: mcpToken } });
  closers.push(() => emu.close(), () => mcp.close());
  openaiBase = emu.openai.url;
  anthropicBase = emu.anthropic.url;
  providers.openai = { api_key: 'sk-demo-openai' };
  providers.anthropic = { api_key: 'sk-demo-anthropic' };
  mcpServers = {
    crm: { url: mcp.url, auth: { type: 'bearer', token: mcpToken }, allowed_tools: ['whoami', 'search', 'lookup'], require_approval: 'never' },
  };
} else {
  if (realOpenAI) providers.openai = { api_key: realOpenAI };
  if (realAnthropic) providers.anthropic = { api_key: realAnthropic };
  mcpServers = { deepwiki: { url: 'https://mcp.deepwiki.com/mcp', auth: { type: 'none' }, require_approval: 'never' } };
}

const args = [
  'wrangler', 'dev', '--ip', '127.0.0.1', '--port', String(PORT), '--persist-to', STATE,
  '--var', `OPENAI_BASE_URL:${openaiBase}`, '--var', `ANTHROPIC_BASE_URL:${anthropicBase}`,
  '--var', `ADMIN_TOKEN:${secrets.ADMIN_TOKEN}`, '--var', `MASTER_KEY:${secrets.MASTER_KEY}`,
  '--var', `ALLOW_INSECURE_MCP_URLS:${demo}`,
];
const wrangler = spawn('npx', args, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
children.push(wrangler);

function shutdown(code = 0) {
  for (const c of children) { try { process.kill(-c.pid, 'SIGTERM'); } catch {} }
  Promise.allSettled(closers.map((f) => f())).finally(() => process.exit(code));
}
process.on('SIGINT', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
wrangler.on('exit', (code) => shutdown(code ?? 1));

async function waitHealthy() {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try { if ((await fetch(`${GW}/healthz`)).ok) return; } catch {}
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('wrangler dev did not become healthy within 120 s');
}

const admin = (method, path, body) => fetch(`${GW}/admin${path}`, {
  method,
  headers: { authorization: `Bearer ${secrets.ADMIN_TOKEN}`, 'content-type': 'application/json' },
  body: body ? JSON.stringify(body) : undefined,
});

try {
  await waitHealthy();
  const put = await admin('PUT', '/tenants/demo', { providers, mcp_servers: mcpServers });
  if (!put.ok) throw new Error(`seeding the demo tenant failed: ${put.status} ${await put.text()}`);
  let key = secrets.DEMO_KEY;
  const probe = key && await fetch(`${GW}/openai/v1/models`, { headers: { authorization: `Bearer ${key}` } });
  if (!key || probe.status === 401) {
    const created = await (await admin('POST', '/tenants/demo/keys')).json();
    key = created.key;
    secrets.DEMO_KEY = key;
    writeFileSync(SECRETS, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  }
  const label = Object.keys(mcpServers)[0];
  const model = demo ? 'gpt-4.1' : 'gpt-4.1';
  console.log(`
mcpgate is serving on ${GW}  (${demo ? 'demo mode: emulated OpenAI/Anthropic and MCP server on loopback' : 'real providers'})
  admin token : ${secrets.ADMIN_TOKEN}   (kept in ${SECRETS})
  demo tenant : demo, MCP server '${label}'
  gateway key : ${key}

Try it (the gateway fills in the MCP server's URL and credentials):

curl -s ${GW}/openai/v1/responses \\
  -H "Authorization: Bearer ${key}" -H "content-type: application/json" \\
  -d '{"model":"${model}","input":"call ${demo ? 'whoami' : 'read_wiki_structure'}","tools":[{"type":"mcp","server_label":"${label}"}]}'

curl -s ${GW}/admin/tenants/demo -H "Authorization: Bearer ${secrets.ADMIN_TOKEN}"

Ctrl-C stops everything.
`);
} catch (e) {
  console.error(String(e?.message ?? e));
  shutdown(1);
}
