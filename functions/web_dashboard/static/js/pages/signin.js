// Sign-in: the local dev sign-in (any tenant and role, local stack only) or Firebase.
import { config } from "../config.js";
import { devSignIn, firebaseSignIn } from "../auth.js";
import { h } from "../dom.js";

export function signInPage(done) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const fail = (e) => {
    error.textContent = e.message || String(e);
    error.hidden = false;
  };
  if (config.auth === "firebase") {
    const email = h("input", { id: "email", type: "email", autocomplete: "username" });
    const password = h("input", { id: "password", type: "password", autocomplete: "current-password" });
    return h(
      "section",
      { class: "card narrow" },
      h("h1", {}, "Sign in"),
      h(
        "form",
        { onsubmit: (e) => (e.preventDefault(), firebaseSignIn({ email: email.value, password: password.value }).then(done, fail)) },
        h("label", { for: "email" }, "Email"),
        email,
        h("label", { for: "password" }, "Password"),
        password,
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
      ),
      h("button", { type: "button", onclick: () => firebaseSignIn().then(done, fail) }, "Sign in with Google"),
      error,
    );
  }
  const tenant = h("input", { id: "tenant", name: "tenant", value: "acme", required: true, pattern: "[a-z0-9][a-z0-9\\-]{0,62}", autocomplete: "off" });
  const subject = h("input", { id: "subject", name: "subject", value: "dev-user", autocomplete: "off" });
  const role = h("select", { id: "role", name: "role" }, ["viewer", "editor", "admin"].map((r) => h("option", { value: r, selected: r === "editor" }, r)));
  return h(
    "section",
    { class: "card narrow" },
    h("h1", {}, "Sign in to the local stack"),
    h("p", { class: "muted" }, "Local development only: the local gateway signs a dev-issuer token for the tenant and role you choose. Deployed dashboards sign in with Firebase Authentication."),
    h(
      "form",
      {
        id: "dev-sign-in",
        onsubmit: (e) => {
          e.preventDefault();
          devSignIn({ tenant: tenant.value.trim(), role: role.value, subject: subject.value.trim() }).then(done, fail);
        },
      },
      h("label", { for: "tenant" }, "Tenant"),
      tenant,
      h("label", { for: "role" }, "Role"),
      role,
      h("label", { for: "subject" }, "User name"),
      subject,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
    ),
    error,
  );
}
