// Register, verify (account and email channel), sign in.

import { publicApi, signIn } from "./api.js";
import { h, show } from "./dom.js";
import { field, form } from "./forms.js";

export function registerPage() {
  const notice = h("p", { id: "register-result", class: "notice", role: "status" });
  const registerForm = form(
    "register-form",
    [
      field("register-form", "email", "Email", { type: "email", autocomplete: "email", required: true }),
      field("register-form", "password", "Password", {
        type: "password",
        autocomplete: "new-password",
        required: true,
        hint: "8 to 128 characters.",
      }),
      field("register-form", "username", "Username (optional)", { autocomplete: "username" }),
    ],
    "Register",
    async (el) => {
      const body = { email: el.email.value.trim(), password: el.password.value };
      if (el.username.value.trim()) body.username = el.username.value.trim();
      const answer = await publicApi("POST", "/auth/register", body);
      notice.textContent = answer?.message || "Check your mailbox for the verification link.";
      el.reset();
    },
  );
  show(
    "Register",
    registerForm,
    notice,
    h("p", {}, "Already registered? ", h("a", { href: "#/login" }, "Sign in")),
  );
}

export function loginPage(afterSignIn) {
  const loginForm = form(
    "login-form",
    [
      field("login-form", "email", "Email", { type: "email", autocomplete: "username", required: true }),
      field("login-form", "password", "Password", {
        type: "password",
        autocomplete: "current-password",
        required: true,
      }),
    ],
    "Sign in",
    async (el) => {
      await signIn(el.email.value.trim(), el.password.value);
      await afterSignIn();
    },
  );
  show("Sign in", loginForm, h("p", {}, "New here? ", h("a", { href: "#/register" }, "Register")));
}

async function verifyWith(title, call) {
  const result = h("p", { id: "verify-result", role: "status", "data-state": "pending" }, "Verifying…");
  show(title, result);
  try {
    const answer = await call();
    result.dataset.state = "ok";
    result.textContent =
      answer?.status === "already_verified"
        ? "This address was verified already: you can sign in."
        : answer?.message || "Your address is verified: you can sign in.";
  } catch (error) {
    result.dataset.state = "error";
    result.textContent = error.message;
  }
  result.after(h("p", {}, h("a", { href: "#/login" }, "Sign in")));
}

/** `#/verify?token=…`: the account's verification link. */
export function verifyPage(params) {
  const token = params.get("token") || "";
  return verifyWith("Verify your address", () => publicApi("POST", "/auth/verify", { token }));
}

/** `#/channels/verify?token=…`: an email channel's verification link. */
export function verifyChannelPage(params) {
  const token = params.get("token") || "";
  return verifyWith("Verify a channel's address", () => publicApi("POST", "/channels/verify", { token }));
}
