/**
 * `attachment` with the stored name encoded per RFC 6266 / RFC 5987 (DL-01): an ASCII fallback
 * with quotes, backslashes and controls replaced, and the exact name as UTF-8 in filename*.
 * Nothing in a name can end the header or add a parameter.
 */
export function attachmentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
