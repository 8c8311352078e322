// The alert list: filters, pagination, live updates from the feed.

import { api } from "./api.js";
import { CONDITIONS, STATUSES, describe, frequencyText } from "./conditions.js";
import { h, replace, show, when } from "./dom.js";
import { subscribe } from "./feed.js";
import { field } from "./forms.js";

const PAGE_SIZES = ["10", "20", "50", "100"];

function cell(label, ...content) {
  return h("td", { "data-label": label }, ...content);
}

function row(alert) {
  return h(
    "tr",
    { "data-alert-id": alert.id, "data-status": alert.status },
    cell(
      "Alert",
      h("a", { href: `#/alerts/${encodeURIComponent(alert.id)}` }, alert.name || alert.symbol),
      alert.name ? h("span", { class: "muted" }, ` ${alert.symbol}`) : null,
    ),
    cell("Condition", h("span", { class: "condition" }, describe(alert)), h("br"), frequencyText(alert)),
    cell("Status", h("span", { class: `badge badge-${alert.status}` }, alert.status)),
    cell("Delivery", alert.delivery_status || "—"),
    cell("Last fired", alert.last_fired_at ? when(alert.last_fired_at) : "never"),
  );
}

/** `#/alerts?status=…&symbol=…&condition=…&page=…&page_size=…`; returns the page's cleanup. */
export function alertsPage(params) {
  const query = new URLSearchParams();
  for (const key of ["status", "symbol", "condition", "page", "page_size"]) {
    if (params.get(key)) query.set(key, params.get(key));
  }
  const filters = h(
    "form",
    { id: "alert-filters", class: "filters", role: "search", "aria-label": "Filter alerts" },
    field("alert-filters", "status", "Status", {
      options: [["", "any"], ...STATUSES.map((s) => [s, s])],
      value: params.get("status") || "",
    }),
    field("alert-filters", "symbol", "Symbol", { value: params.get("symbol") || "", placeholder: "BTCUSDT" }),
    field("alert-filters", "condition", "Condition", {
      options: [["", "any"], ...CONDITIONS.map(([c]) => [c, c])],
      value: params.get("condition") || "",
    }),
    field("alert-filters", "page_size", "Per page", {
      options: PAGE_SIZES.map((n) => [n, n]),
      value: params.get("page_size") || "20",
    }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter")),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const key of ["status", "symbol", "condition", "page_size"]) {
      const value = filters.elements[key].value.trim();
      if (value) next.set(key, key === "symbol" ? value.toUpperCase() : value);
    }
    location.hash = `#/alerts?${next}`;
  });
  const status = h("p", { id: "alert-list-status", class: "muted", role: "status" }, "Loading…");
  const body = h("tbody");
  const table = h(
    "table",
    { id: "alert-list", class: "stack-table" },
    h("caption", { class: "visually-hidden" }, "Your alerts"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Alert", "Condition", "Status", "Delivery", "Last fired"].map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    body,
  );
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  show(
    "Alerts",
    filters,
    h("p", {}, h("a", { href: "#/alerts/new", class: "button" }, "New alert")),
    status,
    table,
    pager,
  );

  async function load() {
    try {
      const page = await api("GET", `/alerts?${query}`);
      replace(body, page.items.map(row));
      status.textContent =
        page.total === 0 ? "No alerts yet." : `${page.total} alert${page.total === 1 ? "" : "s"}, page ${page.page}.`;
      const link = (label, target, id) => {
        if (!target) return null;
        const next = new URLSearchParams(query);
        next.set("page", new URL(target, location.origin).searchParams.get("page") || "1");
        return h("a", { id, href: `#/alerts?${next}` }, label);
      };
      replace(pager, link("← Previous", page.previous, "alerts-previous"), link("Next →", page.next, "alerts-next"));
    } catch (error) {
      status.textContent = error.message;
    }
  }
  load();
  let timer = null;
  const unsubscribe = subscribe(() => {
    // Many events come in bursts (a firing, then its deliveries): one refetch for the burst.
    clearTimeout(timer);
    timer = setTimeout(load, 250);
  });
  return () => {
    clearTimeout(timer);
    unsubscribe();
  };
}
