// The alert form (create and edit): the fields of the chosen condition only, the symbol with suggestions and
// its current price beside the target.

import { api } from "./api.js";
import { CONDITIONS, WINDOWS, fieldsOf } from "./conditions.js";
import { h, show } from "./dom.js";
import { field, form } from "./forms.js";
import { showPrice, suggest } from "./symbols.js";

const F = "alert-form";
const DEFINITION = ["target_price", "low", "high", "percent", "window"];

function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function channelOptions() {
  const options = [["email", "email: my account's address"]];
  try {
    const answer = await api("GET", "/channels");
    for (const c of answer.items) options.push([c.id, `${c.kind}: ${c.name || c.target}${c.status === "active" ? "" : ` (${c.status})`}`]);
  } catch {
    // The account's address alone still works.
  }
  return options;
}

/** `#/alerts/new` (alert null) or `#/alerts/<id>/edit`; returns the page's cleanup. */
export async function alertFormPage(alertId) {
  const alert = alertId ? await api("GET", `/alerts/${encodeURIComponent(alertId)}`) : null;
  const editing = alert !== null;
  // Not a live region: it refreshes every few seconds, a screen reader would announce each one.
  const price = h("p", { id: "current-price", class: "current-price" });
  const datalist = h("datalist", { id: "symbol-suggestions" });
  const v = (name, fallback = "") => (alert && alert[name] !== null && alert[name] !== undefined ? alert[name] : fallback);
  const decimal = { inputmode: "decimal", autocomplete: "off" };
  const fields = [
    field(F, "symbol", "Symbol", { required: true, list: "symbol-suggestions", value: v("symbol"), extra: datalist, hint: "Type to search the exchange's symbols." }),
    field(F, "condition", "Condition", { options: CONDITIONS, value: v("condition", "cross") }),
    field(F, "target_price", "Target price", { ...decimal, value: v("target_price"), extra: price }),
    field(F, "low", "Low (range start, inside)", { ...decimal, value: v("low") }),
    field(F, "high", "High (range end, inside)", { ...decimal, value: v("high") }),
    field(F, "percent", "Percent", { ...decimal, value: v("percent"), hint: "0.1 to 1000." }),
    field(F, "window", "Window", { options: WINDOWS.map((w) => [w, w]), value: v("window", "1h") }),
    field(F, "frequency", "Frequency", { options: [["once", "once"], ["every_time", "every time (with a cooldown)"]], value: v("frequency", "once") }),
    field(F, "cooldown_s", "Cooldown (seconds)", { type: "number", min: 1, step: 1, value: v("cooldown_s", 300) }),
    field(F, "name", "Name (optional)", { maxlength: 200, value: v("name") }),
    field(F, "message", "Message for the mail (optional)", { type: "textarea", maxlength: 1000, value: v("message"), hint: "Placeholders: {{symbol}} {{price}} {{target}} {{condition}} {{name}} {{time}} {{change_pct}} {{window}} {{trade_id}}" }),
    field(F, "expires_at", "Expires at (optional, your local time)", { type: "datetime-local", value: localInput(v("expires_at", null)) }),
    field(F, "channels", "Channels", { options: await channelOptions(), multiple: true, hint: "None chosen: your account's address." }),
  ];
  const alertForm = form(F, fields, editing ? "Save changes" : "Create alert", async (el) => {
    const body = {};
    const condition = el.condition.value;
    if (!editing) {
      body.symbol = el.symbol.value.trim();
      body.condition = condition;
    }
    for (const name of fieldsOf(condition)) body[name] = el[name].value.trim();
    body.frequency = el.frequency.value;
    if (body.frequency === "every_time") body.cooldown_s = el.cooldown_s.value === "" ? null : Number(el.cooldown_s.value);
    for (const name of ["name", "message"]) {
      const text = el[name].value.trim();
      if (text || editing) body[name] = text || null;
    }
    const expires = el.expires_at.value;
    if (expires || editing) body.expires_at = expires ? new Date(expires).toISOString() : null;
    const channels = [...el.channels.selectedOptions].map((o) => o.value);
    if (channels.length || editing) body.channels = channels.length ? channels : null;
    const saved = editing
      ? await api("PATCH", `/alerts/${encodeURIComponent(alert.id)}`, body)
      : await api("POST", "/alerts", body);
    location.hash = `#/alerts/${encodeURIComponent(saved.id)}`;
  });
  if (editing) {
    alertForm.symbol.disabled = true;
    alertForm.condition.disabled = true;
    for (const id of alert.channels || []) {
      const option = [...alertForm.channels.options].find((o) => o.value === id);
      if (option) option.selected = true;
    }
  }
  const sync = () => {
    const wanted = new Set(fieldsOf(alertForm.condition.value));
    for (const name of DEFINITION) alertForm.querySelector(`[data-field="${name}"]`).hidden = !wanted.has(name);
    alertForm.querySelector('[data-field="cooldown_s"]').hidden = alertForm.frequency.value !== "every_time";
    // The current price stays in view beside whichever price fields the condition takes.
    const anchor = wanted.has("low") ? "high" : wanted.has("percent") ? "window" : "target_price";
    alertForm.querySelector(`[data-field="${anchor}"] .field-error`).before(price);
  };
  alertForm.condition.addEventListener("change", sync);
  alertForm.frequency.addEventListener("change", sync);
  sync();
  suggest(alertForm.symbol, datalist);
  const refresh = () => showPrice(alertForm.symbol.value, price);
  alertForm.symbol.addEventListener("change", refresh);
  alertForm.symbol.addEventListener("input", () => {
    const typed = alertForm.symbol.value.trim().toUpperCase();
    if ([...datalist.options].some((o) => o.value === typed)) refresh();
  });
  refresh();
  // Kept current while a price is shown; an unknown symbol or an unavailable catalog waits for the next change.
  const timer = setInterval(() => ["price", "stale"].includes(price.dataset.state) && refresh(), 5000);
  show(editing ? "Edit alert" : "New alert", alertForm);
  return () => clearInterval(timer);
}
