// Header lists cross the wasm boundary as one string each way instead of one
// call per header: names and values cannot contain NUL (the runtime rejects it).

/** All entries of a Headers object as "name\0value\0name\0value\0". */
export function flattenHeaders(headers) {
  let out = '';
  for (const [name, value] of headers) out += name + '\0' + value + '\0';
  return out;
}

/** A new mutable Headers from a flattened list; throws on an invalid name or value. */
export function buildHeaders(flat) {
  const headers = new Headers();
  const parts = flat.split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) headers.append(parts[i], parts[i + 1]);
  return headers;
}
