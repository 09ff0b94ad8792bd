/** The first sample of each metric in a Prometheus text exposition, by name (labels ignored). */
export function parsePrometheus(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m?.[1] && m[2] !== undefined && !values.has(m[1])) values.set(m[1], Number(m[2]));
  }
  return values;
}

/** A service's `GET /metrics`, parsed; undefined when it does not answer 200 within 5 s. */
export async function scrapeMetrics(url: string): Promise<Map<string, number> | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    return res.ok ? parsePrometheus(await res.text()) : undefined;
  } catch {
    return undefined;
  }
}
