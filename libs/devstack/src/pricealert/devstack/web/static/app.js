// pricealert's web page: the entry module (hash routing, the session, the live feed's toasts).
//
// DOM contract (the browser tests rely on these; keep them stable):
//   forms        #register-form, #login-form, #alert-form (create and edit), #channel-form, #alert-filters;
//                every input has <label for> and name = the API field (email, password, symbol, condition,
//                target_price, low, high, percent, window, frequency, cooldown_s, name, message, expires_at,
//                channels; kind, address, url); input id #<form>-<name>; a field's error #<form>-<name>-error
//                (named by the input's aria-describedby; the input gets aria-invalid="true"); the form's
//                general error #<form>-error. Fields a condition does not take are inside [hidden].
//   nav          #nav-alerts, #nav-new-alert, #nav-channels, #nav-sign-out (signed in);
//                #nav-login, #nav-register (signed out); #session-user holds the signed-in email.
//   alert list   #alert-list (a table), rows [data-alert-id="<id>"][data-status="<status>"];
//                #alert-list-status (count or error); pager links #alerts-previous, #alerts-next.
//   alert detail #alert-detail; #firings rows [data-firing-id][data-status]; #deliveries rows
//                [data-channel-id][data-status] (the newest firing's log, or the one whose "Delivery log"
//                button was pressed); buttons #pause-alert, #resume-alert, #edit-alert (a link),
//                #delete-alert, then #confirm-delete / #cancel-delete; errors in #alert-detail-status.
//   alert form   #current-price (data-state: price | stale | unknown | unavailable | none; data-price),
//                #symbol-suggestions (the datalist of the symbol input).
//   channels     #channel-list rows [data-channel-id][data-status] with buttons [data-action=test|rotate|
//                remove|confirm-remove]; #channel-secret (the secret, shown once, in #channel-secret-value);
//                #channel-test-result.
//   toasts       #toasts (role=status, aria-live=polite), each .toast (.toast-fired when an alert fired).
//   verify       #verify-result (data-state: pending | ok | error), for #/verify and #/channels/verify.
// Routes: #/login, #/register, #/verify?token=, #/channels/verify?token=, #/alerts?status=&symbol=&condition=
// &page=&page_size=, #/alerts/new, #/alerts/<id>, #/alerts/<id>/edit, #/channels, #/sign-out.

import { api, onSessionChange, refreshSession, signOut, signedIn } from "./api.js";
import { alertFormPage } from "./alertform.js";
import { alertsPage } from "./alerts.js";
import { loginPage, registerPage, verifyChannelPage, verifyPage } from "./auth.js";
import { channelsPage } from "./channels.js";
import { detailPage } from "./detail.js";
import { h, show, toast } from "./dom.js";
import { openFeed, resetFeed, subscribe } from "./feed.js";

let cleanup = null;
let routeCount = 0;

function setNav(inSession) {
  for (const el of document.querySelectorAll("[data-when]")) {
    el.hidden = el.dataset.when !== (inSession ? "in" : "out");
  }
}

async function afterSignIn() {
  try {
    const me = await api("GET", "/auth/me");
    document.getElementById("session-user").textContent = me.email;
  } catch {
    document.getElementById("session-user").textContent = "";
  }
  setNav(true);
  resetFeed();
  openFeed();
  if (["", "#/", "#/login", "#/register"].includes(location.hash.split("?")[0])) location.hash = "#/alerts";
  else route();
}

const PUBLIC = new Set(["login", "register", "verify", "channels/verify"]);

async function route() {
  const count = ++routeCount;
  if (cleanup) cleanup();
  cleanup = null;
  const [rawPath, rawQuery = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const path = rawPath.replace(/\/+$/, "");
  const params = new URLSearchParams(rawQuery);
  const parts = path.split("/").map(decodeURIComponent);
  if (path === "sign-out") {
    await signOut().catch(() => {});
    location.hash = "#/login";
    return;
  }
  if (!PUBLIC.has(path) && !signedIn()) {
    if (path !== "" && path !== "alerts") sessionNotice();
    return loginPage(afterSignIn);
  }
  let result;
  try {
    if (path === "login") result = signedIn() ? alertsPage(params) : loginPage(afterSignIn);
    else if (path === "register") result = registerPage();
    else if (path === "verify") result = verifyPage(params);
    else if (path === "channels/verify") result = verifyChannelPage(params);
    else if (path === "channels") result = channelsPage();
    else if (path === "alerts/new") result = alertFormPage(null);
    else if (parts[0] === "alerts" && parts.length === 3 && parts[2] === "edit") result = alertFormPage(parts[1]);
    else if (parts[0] === "alerts" && parts.length === 2) result = detailPage(parts[1]);
    else if (path === "" || path === "alerts") result = alertsPage(params);
    else result = show("Not found", h("p", {}, "No such page. ", h("a", { href: "#/alerts" }, "Your alerts")));
    const done = await result;
    if (count !== routeCount) {
      if (typeof done === "function") done();
    } else if (typeof done === "function") {
      cleanup = done;
    }
  } catch (error) {
    if (count === routeCount) show("Something went wrong", h("p", { class: "form-error" }, error.message));
  }
}

function sessionNotice() {
  toast("Sign in to see that page.", "info", 4000);
}

// A toast when an alert fires, whatever page is open.
subscribe((type, data) => {
  if (type === "alert.fired") {
    const item = toast(`${data.symbol} alert fired at ${data.price}.`, "fired", 12000);
    item.dataset.alertId = data.alert_id;
  } else if (type === "delivery.failed") {
    toast(`A notification failed: ${data.error || "no reason given"}.`, "error");
  }
});

onSessionChange((inSession) => {
  setNav(inSession);
  if (!inSession) {
    resetFeed();
    document.getElementById("session-user").textContent = "";
    if (!PUBLIC.has(location.hash.replace(/^#\/?/, "").split("?")[0])) route();
  }
});

window.addEventListener("hashchange", route);
// The skip link moves focus without touching the fragment, which is the page's route.
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});

async function start() {
  setNav(false);
  if (await refreshSession()) await afterSignIn();
  else route();
}

start();
