// The live feed: POST /events/ticket, then EventSource('/events?ticket=…'); a new ticket on every reconnect.

import { api, signedIn } from "./api.js";

const TYPES = [
  "alert.created",
  "alert.updated",
  "alert.deleted",
  "alert.expired",
  "alert.paused",
  "alert.fired",
  "delivery.sent",
  "delivery.retrying",
  "delivery.failed",
  "feed.gap",
];
const handlers = new Set();
const seen = new Set();
let source = null;
let lastId = null;
let retryTimer = null;
let retryDelay = 1000;

/** `fn(type, data)` for every feed event (duplicates dropped); returns a function that unsubscribes. */
export function subscribe(fn) {
  handlers.add(fn);
  return () => handlers.delete(fn);
}

function deliver(type, event) {
  if (event.lastEventId) lastId = event.lastEventId;
  let data = {};
  try {
    data = JSON.parse(event.data || "{}");
  } catch {
    return;
  }
  // The feed is at least once: an event seen before (same type and source) is dropped.
  const key = `${type} ${data.source_id ?? event.lastEventId}`;
  if (data.source_id && seen.has(key)) return;
  seen.add(key);
  if (seen.size > 2000) seen.clear();
  for (const fn of handlers) fn(type, data);
}

/** Opens the feed (again); does nothing when signed out. */
export async function openFeed() {
  closeFeed();
  if (!signedIn()) return;
  let ticket;
  try {
    ({ ticket } = await api("POST", "/events/ticket"));
  } catch {
    scheduleReconnect();
    return;
  }
  if (!signedIn()) return;
  const query = new URLSearchParams({ ticket });
  if (lastId) query.set("last_event_id", lastId);
  source = new EventSource(`/events?${query}`);
  source.addEventListener("open", () => {
    retryDelay = 1000;
  });
  for (const type of TYPES) source.addEventListener(type, (event) => deliver(type, event));
  // A ticket opens one feed once: the browser's own retry would be refused, so reconnect with a new one.
  source.addEventListener("error", () => {
    closeFeed();
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  clearTimeout(retryTimer);
  if (!signedIn()) return;
  retryTimer = setTimeout(openFeed, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30000);
}

/** Closes the feed and stops reconnecting. */
export function closeFeed() {
  clearTimeout(retryTimer);
  if (source) source.close();
  source = null;
}

/** Forgets the feed position (a new session starts from now). */
export function resetFeed() {
  closeFeed();
  lastId = null;
  seen.clear();
}
