import { type Priority, higherOf, isPriority, lowerOf, priorityRank } from "./priority";

/**
 * The priority a request runs at. A client may always lower its priority with `x-priority`; it
 * may raise it above the route's only up to the tenant's `maxClientPriority`, and never below
 * what the route already grants. Garbage hints are ignored.
 */
export function effectivePriority(routePriority: Priority, hint: string | null, maxClientPriority: Priority): Priority {
  const wanted = hint?.trim().toLowerCase() ?? "";
  if (!isPriority(wanted)) return routePriority;
  if (priorityRank(wanted) <= priorityRank(routePriority)) return wanted;
  return higherOf(routePriority, lowerOf(wanted, maxClientPriority));
}
