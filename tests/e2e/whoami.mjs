// The MCP emulator's `whoami` tool called through the official SDKs: what the
// MCP server saw (server, credential fingerprint, and for OAuth servers the
// subject), for the per-user suites.
import assert from 'node:assert/strict';

/** OpenAI and Anthropic clients for a gateway key, acting for `user` when given. */
export function sdkClients(gw, key, user) {
  const headers = user ? { 'mcpgate-user': user } : {};
  return { oai: gw.openai(key, { defaultHeaders: headers }), ant: gw.anthropic(key, { defaultHeaders: headers }) };
}

/** The whoami answer through the OpenAI Responses API, streamed or not. */
export async function whoamiOpenAI(oai, server, stream = false) {
  const body = { model: 'gpt-4.1', input: 'call whoami', tools: [{ type: 'mcp', server_label: server }] };
  let call;
  if (!stream) {
    const r = await oai.responses.create(body);
    call = r.output.find((o) => o.type === 'mcp_call');
  } else {
    for await (const ev of await oai.responses.create({ ...body, stream: true })) {
      if (ev.type === 'response.completed') call = ev.response.output.find((o) => o.type === 'mcp_call');
    }
  }
  assert.ok(call && call.status === 'completed', JSON.stringify(call));
  return JSON.parse(call.output);
}

/** The whoami answer through the Anthropic Messages API (MCP connector), streamed or not. */
export async function whoamiAnthropic(ant, server, stream = false) {
  const body = {
    model: 'claude-sonnet-4-6', max_tokens: 64, betas: ['mcp-client-2025-11-20'],
    messages: [{ role: 'user', content: 'call whoami' }],
    mcp_servers: [{ type: 'url', name: server, url: 'https://placeholder.invalid/mcp' }],
  };
  const m = stream ? await ant.beta.messages.stream(body).finalMessage() : await ant.beta.messages.create(body);
  const result = m.content.find((b) => b.type === 'mcp_tool_result');
  assert.ok(result && !result.is_error, JSON.stringify(m.content));
  const text = Array.isArray(result.content) ? result.content.map((c) => c.text).join('') : result.content;
  return JSON.parse(text);
}
