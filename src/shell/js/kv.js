// The KV calls of the request path, each one call from wasm.

/** A value as text, or null; the binding is looked up here, not wrapped in wasm. */
export function getText(env, binding, key) {
  return env[binding].get(key);
}

// One page of a KV list as JSON text: the wasm side then needs only the JSON
// parser it already has, not a JS-object deserializer (bundle size).
// A rejected list (e.g. a cursor KV never issued) rejects the promise.
export async function listKeys(env, binding, prefix, limit, cursor) {
  const page = await env[binding].list({ prefix, limit, cursor: cursor || undefined });
  return JSON.stringify({
    keys: page.keys.map((k) => k.name),
    cursor: page.list_complete ? null : (page.cursor ?? null),
    complete: page.list_complete,
  });
}
