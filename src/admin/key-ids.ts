/** Key ids and hints: random, URL-safe, and never enough of the key to use it. */
export function randomToken(bytes: number): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

export const newKeyId = () => `key_${randomToken(9)}`;

/** First characters of the key, to tell keys apart in listings. */
export const keyHint = (key: string) => `${key.slice(0, 6)}…`;
