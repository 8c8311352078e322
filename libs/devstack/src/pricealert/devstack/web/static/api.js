// The API client. The access token lives in this module's memory only: never in localStorage,
// sessionStorage or a cookie. The refresh token is the httpOnly cookie the session routes set.

let accessToken = null;
let refreshTimer = null;
let refreshing = null;
const listeners = new Set();

/** An API error: the HTTP status and the API's {code, message, details}. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Called with true/false whenever the session starts or ends. */
export function onSessionChange(fn) {
  listeners.add(fn);
}

export function signedIn() {
  return accessToken !== null;
}

function setSession(answer) {
  const wasIn = accessToken !== null;
  accessToken = answer.access_token;
  clearTimeout(refreshTimer);
  // Refresh a minute before expiry (or at 80 % of a short lifetime).
  const seconds = Number(answer.expires_in) || 900;
  const delay = Math.max(5, Math.min(seconds - 60, seconds * 0.8)) * 1000;
  refreshTimer = setTimeout(() => refreshSession().catch(() => {}), delay);
  if (!wasIn) for (const fn of listeners) fn(true);
}

function endSession() {
  const wasIn = accessToken !== null;
  accessToken = null;
  clearTimeout(refreshTimer);
  if (wasIn) for (const fn of listeners) fn(false);
}

async function parse(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.ok) return body;
  const error = body && body.error ? body.error : {};
  throw new ApiError(
    response.status,
    error.code || `http_${response.status}`,
    error.message || `The server answered ${response.status}.`,
    error.details ?? null,
  );
}

async function send(method, path, body, withToken) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (withToken && accessToken) headers.Authorization = `Bearer ${accessToken}`;
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network_error", "The server cannot be reached; check your connection.", null);
  }
}

/** Calls the API with the access token; on a 401 refreshes the session once and tries again. */
export async function api(method, path, body) {
  let response = await send(method, path, body, true);
  if (response.status === 401 && accessToken) {
    if (await refreshSession().catch(() => false)) response = await send(method, path, body, true);
  }
  if (response.status === 401) endSession();
  return parse(response);
}

/** Calls the API without the access token (register, verify, …). */
export async function publicApi(method, path, body) {
  return parse(await send(method, path, body, false));
}

/** Signs in: the access token comes back in the answer, the refresh token as an httpOnly cookie. */
export async function signIn(email, password) {
  setSession(await parse(await send("POST", "/auth/session", { email, password }, false)));
}

/** A new access token from the refresh cookie; false when there is no session. Concurrent calls share one. */
export function refreshSession() {
  refreshing ??= (async () => {
    try {
      setSession(await parse(await send("POST", "/auth/session/refresh", undefined, false)));
      return true;
    } catch (error) {
      if (error.status === 401 || error.status === 403 || error.status === 404) endSession();
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Ends the session on the server (the cookie is cleared) and here. */
export async function signOut() {
  try {
    await parse(await send("DELETE", "/auth/session", undefined, false));
  } finally {
    endSession();
  }
}
