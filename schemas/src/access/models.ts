/**
 * Whether a model list (of a key, an account or an upstream key) admits a model: null admits
 * every model; entries are exact names or prefixes ending in "*".
 */
export function modelAllowed(list: readonly string[] | null, model: string): boolean {
  if (!list) return true;
  return list.some((m) => m === '*' || m === model || (m.endsWith('*') && model.startsWith(m.slice(0, -1))));
}
