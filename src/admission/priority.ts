/**
 * Priority classes, lowest first. The order is the protection order: under pressure the guard
 * sheds `low` before `normal` before `high`, and `critical` last.
 */
export const PRIORITIES = ["low", "normal", "high", "critical"] as const;

export type Priority = (typeof PRIORITIES)[number];

export function priorityRank(priority: Priority): number {
  return PRIORITIES.indexOf(priority);
}

export function isPriority(value: string): value is Priority {
  return (PRIORITIES as readonly string[]).includes(value);
}

export function lowerOf(a: Priority, b: Priority): Priority {
  return priorityRank(a) <= priorityRank(b) ? a : b;
}

export function higherOf(a: Priority, b: Priority): Priority {
  return priorityRank(a) >= priorityRank(b) ? a : b;
}

export function countByPriority(): Record<Priority, number> {
  return { low: 0, normal: 0, high: 0, critical: 0 };
}
