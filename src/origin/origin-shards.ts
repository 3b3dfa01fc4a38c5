/** Origin shard addressing: the name of shard `index`'s Durable Object. */
export function originShardName(index: number): string {
  return `origin:${index}`;
}
