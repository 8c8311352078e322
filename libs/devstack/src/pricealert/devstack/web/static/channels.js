// Channels: list, add (email, webhook, apprise), test, rotate a webhook's secret (shown once), remove.

import { api } from "./api.js";
import { h, replace, show, toast } from "./dom.js";
import { field, form } from "./forms.js";

const C = "channel-form";

function secretBox(box, channel) {
  if (!channel.secret) return replace(box);
  box.hidden = false;
  replace(
    box,
    h("h2", {}, "Signing secret"),
    h("p", {}, `The signing secret of ${channel.name || channel.target}. It is shown this once: copy it now.`),
    h("p", {}, h("code", { id: "channel-secret-value" }, channel.secret)),
  );
  box.focus();
}

/** `#/channels`. */
export function channelsPage() {
  const secret = h("section", { id: "channel-secret", class: "notice", tabindex: "-1", hidden: true });
  const result = h("p", { id: "channel-test-result", role: "status" });
  const body = h("tbody");
  const list = h(
    "table",
    { id: "channel-list", class: "stack-table" },
    h("caption", {}, "Your channels (your account's address is always one of them)"),
    h("thead", {}, h("tr", {}, ["Channel", "Target", "Status", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    body,
  );

  async function run(what, call) {
    replace(result);
    try {
      return await call();
    } catch (error) {
      result.textContent = `${what}: ${error.message}`;
      return null;
    }
  }

  async function test(id) {
    result.textContent = "Sending a test notification…";
    const outcome = await run("Test", () => api("POST", `/channels/${encodeURIComponent(id)}/test`));
    if (outcome) {
      result.textContent = outcome.delivered
        ? `Test delivered${outcome.detail ? ` (${outcome.detail})` : ""}.`
        : `Test not delivered: ${outcome.detail || "no reason given"}.`;
      toast(result.textContent, outcome.delivered ? "info" : "error");
    }
  }

  function actions(c) {
    // Every row has the same buttons: their accessible names say which channel they act on.
    const label = `${c.kind}${c.name ? ` ${c.name}` : ""}`;
    const confirmRemove = h(
      "button",
      { type: "button", class: "danger", hidden: true, "data-action": "confirm-remove", "aria-label": `Yes, remove ${label}` },
      "Yes, remove",
    );
    const remove = h("button", { type: "button", "data-action": "remove", "aria-label": `Remove ${label}` }, "Remove");
    remove.addEventListener("click", () => {
      confirmRemove.hidden = false;
      confirmRemove.focus();
    });
    confirmRemove.addEventListener("click", async () => {
      replace(result);
      try {
        await api("DELETE", `/channels/${encodeURIComponent(c.id)}`);
        toast("Channel removed.");
        await load();
      } catch (error) {
        result.textContent = `Remove: ${error.message}`;
      }
    });
    return [
      h("button", { type: "button", "data-action": "test", "aria-label": `Test ${label}`, onclick: () => test(c.id) }, "Test"),
      c.kind === "webhook"
        ? h("button", {
            type: "button",
            "data-action": "rotate",
            "aria-label": `Rotate the secret of ${label}`,
            onclick: async () => {
              const rotated = await run("Rotate", () => api("POST", `/channels/${encodeURIComponent(c.id)}/rotate-secret`));
              if (rotated) secretBox(secret, rotated);
            },
          }, "Rotate secret")
        : null,
      c.id === "email" ? null : remove,
      c.id === "email" ? null : confirmRemove,
    ];
  }

  function row(c) {
    return h(
      "tr",
      { "data-channel-id": c.id, "data-status": c.status },
      h("td", { "data-label": "Channel" }, `${c.kind}${c.name ? `: ${c.name}` : ""}`),
      h("td", { "data-label": "Target" }, c.target),
      h("td", { "data-label": "Status" }, c.status + (c.disabled_reason ? ` (${c.disabled_reason})` : "")),
      h("td", { "data-label": "Actions", class: "row-actions" }, actions(c)),
    );
  }

  async function load() {
    const answer = await run("List", () => api("GET", "/channels"));
    if (!answer) return;
    const address = document.getElementById("session-user").textContent;
    const account = { id: "email", kind: "email", name: "my account's address", target: address, status: "active" };
    replace(body, row(account), answer.items.map(row));
  }

  const channelForm = form(
    C,
    [
      field(C, "kind", "Kind", { options: [["email", "email"], ["webhook", "webhook"], ["apprise", "apprise"]] }),
      field(C, "name", "Name (optional)", { maxlength: 200 }),
      field(C, "address", "Email address", { type: "email", autocomplete: "email" }),
      field(C, "url", "URL", { type: "url", hint: "webhook: an https URL; apprise: tgram://, discord://, ntfy://, …" }),
    ],
    "Add channel",
    async (el) => {
      const kind = el.kind.value;
      const payload = { kind };
      if (el.name.value.trim()) payload.name = el.name.value.trim();
      if (kind === "email") payload.address = el.address.value.trim();
      else payload.url = el.url.value.trim();
      const created = await api("POST", "/channels", payload);
      el.reset();
      sync();
      toast(created.status === "unverified" ? "Channel added: follow the link mailed to it." : "Channel added.");
      secretBox(secret, created);
      await load();
    },
  );
  const sync = () => {
    const email = channelForm.kind.value === "email";
    channelForm.querySelector('[data-field="address"]').hidden = !email;
    channelForm.querySelector('[data-field="url"]').hidden = email;
  };
  channelForm.kind.addEventListener("change", sync);
  sync();
  show("Channels", result, secret, list, h("h2", {}, "Add a channel"), channelForm);
  load();
}
