// Fetches one static asset through the assets binding and answers it with
// the given headers (the worker's own, not the asset server's). The body
// streams through untouched; null when the asset is missing.
export async function serveAsset(env, binding, path, headers) {
  // The assets binding resolves the path only; the host is a placeholder.
  const res = await env[binding].fetch(new Request(`https://assets.invalid${path}`));
  if (res.status !== 200) {
    await res.body?.cancel();
    return null;
  }
  return new Response(res.body, { status: 200, headers });
}
