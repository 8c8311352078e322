// Forms: labelled fields, per-field errors from the API's 422 details, the form's general error.

import { h, replace } from "./dom.js";

/** A labelled field: input id `<form>-<name>`, error `#<form>-<name>-error` named by aria-describedby. */
export function field(formId, name, label, opts = {}) {
  const id = `${formId}-${name}`;
  const errorId = `${id}-error`;
  const hintId = opts.hint ? `${id}-hint` : null;
  const common = {
    id,
    name,
    required: opts.required,
    "aria-describedby": [hintId, errorId].filter(Boolean).join(" "),
  };
  let control;
  if (opts.options) {
    control = h(
      "select",
      { ...common, multiple: opts.multiple },
      opts.options.map(([value, text]) => h("option", { value }, text)),
    );
  } else if (opts.type === "textarea") {
    control = h("textarea", { ...common, rows: opts.rows || 3, maxlength: opts.maxlength });
  } else {
    control = h("input", {
      ...common,
      type: opts.type || "text",
      autocomplete: opts.autocomplete || "off",
      inputmode: opts.inputmode,
      list: opts.list,
      min: opts.min,
      step: opts.step,
      maxlength: opts.maxlength,
      placeholder: opts.placeholder,
      spellcheck: opts.type === "email" || opts.type === "password" ? "false" : null,
    });
  }
  if (opts.value !== undefined && opts.value !== null) control.value = String(opts.value);
  return h(
    "div",
    { class: "field", "data-field": name },
    h("label", { for: id }, label),
    control,
    opts.extra || null,
    hintId ? h("p", { id: hintId, class: "hint" }, opts.hint) : null,
    h("p", { id: errorId, class: "field-error" }),
  );
}

/** A form with its general error line `#<id>-error`; `onsubmit` gets the FormData-free form element. */
export function form(id, children, submitText, onsubmit) {
  const button = h("button", { type: "submit", class: "primary" }, submitText);
  const el = h(
    "form",
    { id, novalidate: true },
    h("p", { id: `${id}-error`, class: "form-error", role: "alert" }),
    children,
    h("div", { class: "actions" }, button),
  );
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(el);
    button.disabled = true;
    try {
      await onsubmit(el);
    } catch (error) {
      showError(el, error);
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

export function clearErrors(formEl) {
  for (const p of formEl.querySelectorAll(".field-error, .form-error")) replace(p);
  for (const input of formEl.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

// Domain error codes (422 and friends) and the field they are about.
const CODE_FIELDS = {
  unknown_symbol: "symbol",
  catalog_unavailable: "symbol",
  percent_out_of_range: "percent",
  unknown_window: "window",
  low_not_below_high: "high",
  cooldown_out_of_range: "cooldown_s",
  unknown_placeholder: "message",
  message_too_long: "message",
  expires_at_in_past: "expires_at",
  no_channels: "channels",
  too_many_channels: "channels",
  duplicate_channel: "channels",
  unknown_channel: "channels",
  invalid_email: "address",
  invalid_url: "url",
  https_required: "url",
  unresolvable_host: "url",
  private_target: "url",
  invalid_apprise_url: "url",
  target_too_long: "url",
  email_taken: "email",
  invalid_email_address: "email",
  weak_password: "password",
};

/** Puts `message` under the field `name` of the form (false if the form has no such field). */
export function fieldError(formEl, name, message) {
  const input = formEl.querySelector(`[name="${CSS.escape(name)}"]`);
  const slot = formEl.querySelector(`#${CSS.escape(`${formEl.id}-${name}-error`)}`);
  if (!input || !slot || input.closest("[hidden]")) return false;
  input.setAttribute("aria-invalid", "true");
  slot.append(slot.textContent ? ` ${message}` : message);
  return true;
}

/** Shows an API error: 422 details next to their fields, the rest in `#<form>-error`; focuses the first. */
export function showError(formEl, error) {
  const general = [];
  const details = error && error.details;
  if (Array.isArray(details)) {
    for (const item of details) {
      const loc = Array.isArray(item.loc) ? item.loc : [];
      const name = [...loc].reverse().find((part) => typeof part === "string" && part !== "body");
      const msg = String(item.msg || "is invalid");
      if (!name || !fieldError(formEl, name, msg)) general.push(name ? `${name}: ${msg}` : msg);
    }
  } else {
    let name = error && CODE_FIELDS[error.code];
    if (error && error.code === "field_not_allowed" && details && Array.isArray(details.fields)) {
      name = details.fields[0];
    } else if (error && error.code === "price_out_of_range") {
      name = String(error.message || "").split(" ")[0];
    }
    let text = error && error.message ? String(error.message) : "Something went wrong.";
    if (error && error.code === "unknown_symbol" && details && details.close_matches?.length) {
      text += ` Did you mean ${details.close_matches.join(", ")}?`;
    }
    if (!name || !fieldError(formEl, name, text)) general.push(text);
  }
  const slot = formEl.querySelector(`#${CSS.escape(`${formEl.id}-error`)}`);
  if (general.length && slot) replace(slot, general.join(" "));
  const first = formEl.querySelector("[aria-invalid='true']");
  if (first) first.focus();
}
