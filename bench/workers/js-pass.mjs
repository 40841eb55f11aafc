// js-pass: the floor for any gateway on Workers. Looks the tenant up in KV by the
// gateway key's SHA-256 (one read) and forwards the request unchanged — body as the
// incoming stream, response as the fetched stream — with only the key swapped.
import { error, lookupTenant, upstreamHeaders, upstreamUrl } from './common.mjs';

export default {
  async fetch(req, env) {
    const target = upstreamUrl(req, env);
    if (!target) return error(404, 'not found');
    const tenant = await lookupTenant(req, env);
    if (!tenant) return error(401, 'invalid gateway key');
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    return fetch(target, {
      method: req.method,
      headers: upstreamHeaders(req, tenant.openai_key),
      body: hasBody ? req.body : undefined,
      redirect: 'manual',
    });
  },
};
