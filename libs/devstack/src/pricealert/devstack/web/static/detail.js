// One alert: its definition, pause / resume / edit / delete, its firings and each firing's delivery log.

import { api } from "./api.js";
import { describe, frequencyText } from "./conditions.js";
import { h, replace, show, toast, when } from "./dom.js";
import { subscribe } from "./feed.js";

function facts(alert) {
  const pairs = [
    ["Symbol", alert.symbol],
    ["Condition", describe(alert)],
    ["Frequency", frequencyText(alert)],
    ["Status", alert.status + (alert.paused_reason ? ` (${alert.paused_reason})` : "")],
    ["Name", alert.name || "—"],
    ["Message", alert.message || "—"],
    ["Channels", (alert.channels || []).join(", ")],
    ["Created", when(alert.created_at)],
    ["Expires", alert.expires_at ? when(alert.expires_at) : "never"],
    ["Fired", `${alert.firing_count} time${alert.firing_count === 1 ? "" : "s"}`],
    ["Last fired", alert.last_fired_at ? when(alert.last_fired_at) : "never"],
    ["Triggered price", alert.triggered_price || "—"],
    ["Delivery", alert.delivery_status ? alert.delivery_status + (alert.delivery_error ? `: ${alert.delivery_error}` : "") : "—"],
    ["Version", String(alert.version)],
  ];
  return h("dl", { class: "facts" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function table(id, caption, headings, rows) {
  return h(
    "table",
    { id, class: "stack-table" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows),
  );
}

/** `#/alerts/<id>`; returns the page's cleanup. */
export function detailPage(alertId) {
  const path = `/alerts/${encodeURIComponent(alertId)}`;
  const region = h("section", { id: "alert-detail", "aria-labelledby": "alert-detail-title" });
  const firingsBox = h("section", { "aria-label": "Firings" });
  const deliveriesBox = h("section", { "aria-label": "Delivery log" });
  const status = h("p", { id: "alert-detail-status", role: "status", class: "form-error" });
  show("Alert", status, region, firingsBox, deliveriesBox);
  let chosenFiring = null;

  async function act(method, body, okText) {
    replace(status);
    try {
      await api(method, path, body);
      toast(okText, "info");
      if (method === "DELETE") location.hash = "#/alerts";
      else await load();
    } catch (error) {
      status.textContent = error.message;
    }
  }

  function buttons(alert) {
    const editable = alert.status === "active" || alert.status === "paused";
    const confirmBox = h("div", { id: "delete-confirm", class: "confirm", hidden: true });
    const del = h("button", { id: "delete-alert", type: "button", class: "danger" }, "Delete");
    del.addEventListener("click", () => {
      confirmBox.hidden = false;
      confirmBox.querySelector("button").focus();
    });
    replace(
      confirmBox,
      h("p", {}, "Delete this alert? It is never evaluated again."),
      h("button", { id: "confirm-delete", type: "button", class: "danger", onclick: () => act("DELETE", undefined, "Alert deleted.") }, "Yes, delete"),
      h("button", { id: "cancel-delete", type: "button", onclick: () => { confirmBox.hidden = true; del.focus(); } }, "Cancel"),
    );
    return h(
      "div",
      { class: "actions" },
      alert.status === "active"
        ? h("button", { id: "pause-alert", type: "button", onclick: () => act("PATCH", { status: "paused" }, "Alert paused.") }, "Pause")
        : null,
      alert.status === "paused"
        ? h("button", { id: "resume-alert", type: "button", onclick: () => act("PATCH", { status: "active" }, "Alert resumed.") }, "Resume")
        : null,
      editable ? h("a", { id: "edit-alert", class: "button", href: `#/alerts/${encodeURIComponent(alert.id)}/edit` }, "Edit") : null,
      alert.status !== "deleted" ? del : null,
      confirmBox,
    );
  }

  async function loadDeliveries(firingId) {
    chosenFiring = firingId;
    const log = await api("GET", `${path}/firings/${encodeURIComponent(firingId)}/deliveries?page_size=100`);
    const rows = log.items.map((d) =>
      h(
        "tr",
        { "data-channel-id": d.channel_id, "data-status": d.status },
        h("td", { "data-label": "Channel" }, `${d.channel_kind} ${d.channel_id}`),
        h("td", { "data-label": "Attempt" }, String(d.attempt)),
        h("td", { "data-label": "Status" }, h("span", { class: `badge badge-${d.status}` }, d.status)),
        h("td", { "data-label": "When" }, when(d.occurred_at)),
        h("td", { "data-label": "Reply" }, [d.reply, d.error].filter(Boolean).join(" · ") || "—"),
      ),
    );
    const summary = log.channels.map((c) => `${c.channel_kind || "?"} ${c.channel_id}: ${c.status}`).join("; ");
    replace(
      deliveriesBox,
      h("h2", {}, "Delivery log"),
      h("p", { class: "muted" }, `Firing ${log.firing_id}: ${log.delivery_status || "pending"}. ${summary}`),
      table("deliveries", "Every attempt, oldest first", ["Channel", "Attempt", "Status", "When", "Reply"], rows),
    );
  }

  async function load() {
    let alert;
    try {
      alert = await api("GET", path);
    } catch (error) {
      replace(region, h("p", { class: "form-error" }, error.message));
      return;
    }
    // A redraw (a feed event, an action) keeps an open delete confirmation open and the keyboard focus where it was.
    const focusedId = region.contains(document.activeElement) ? document.activeElement.id : "";
    const confirming = region.querySelector("#delete-confirm")?.hidden === false;
    replace(
      region,
      h("h2", { id: "alert-detail-title", "data-status": alert.status }, `${alert.name || alert.symbol}: ${describe(alert)}`),
      facts(alert),
      buttons(alert),
    );
    const confirmBox = region.querySelector("#delete-confirm");
    if (confirming && confirmBox) confirmBox.hidden = false;
    if (focusedId) document.getElementById(focusedId)?.focus();
    const firings = await api("GET", `${path}/firings?page_size=100`);
    const rows = firings.items.map((f) => {
      const show = h("button", { type: "button", class: "link", onclick: () => loadDeliveries(f.id) }, "Delivery log");
      return h(
        "tr",
        { "data-firing-id": f.id, "data-status": f.delivery_status || "pending" },
        h("td", { "data-label": "Firing" }, String(f.firing ?? 1)),
        h("td", { "data-label": "Fired at" }, when(f.fired_at)),
        h("td", { "data-label": "Price" }, f.price || "—"),
        h("td", { "data-label": "Delivery" }, (f.delivery_status || "pending") + (f.delivery_error ? `: ${f.delivery_error}` : "")),
        h("td", { "data-label": "" }, show),
      );
    });
    replace(
      firingsBox,
      h("h2", {}, "Firings"),
      firings.total === 0 ? h("p", { class: "muted" }, "It has not fired yet.") : null,
      table("firings", `${firings.total} firing${firings.total === 1 ? "" : "s"}, newest first`, ["Firing", "Fired at", "Price", "Delivery", ""], rows),
    );
    const target = chosenFiring || firings.items[0]?.id;
    if (target) await loadDeliveries(target).catch(() => {});
    else replace(deliveriesBox);
  }

  load();
  let timer = null;
  const unsubscribe = subscribe((type, data) => {
    if (data.alert_id && data.alert_id !== alertId) return;
    clearTimeout(timer);
    timer = setTimeout(load, 250);
  });
  return () => {
    clearTimeout(timer);
    unsubscribe();
  };
}
