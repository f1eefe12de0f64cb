// Who the user is and their token. Production: Firebase Authentication through its SDK, which
// refreshes ID tokens itself. Local stack: the dev sign-in of the local gateway mints a dev-issuer
// token for a chosen tenant and role. The token lives in memory and in this origin's
// sessionStorage only; it never goes into a URL and is never logged.
import { config } from "./config.js";

const KEY = "promptopt.session";
const ROLES = ["viewer", "editor", "admin"];
const listeners = new Set();
let session = null; // {subject, tenant, role, token, expires_at}
let firebase = null; // {auth, user}

export function onSessionChange(fn) {
  listeners.add(fn);
}

function changed() {
  for (const fn of listeners) fn(session);
}

export function whoami() {
  return session ? { subject: session.subject, tenant: session.tenant, role: session.role } : null;
}

/** True when the signed-in role is at least `role`. */
export function can(role) {
  return !!session && ROLES.indexOf(session.role) >= ROLES.indexOf(role);
}

/** Why a control is disabled for this caller ("" when allowed). */
export function because(role) {
  if (can(role)) return "";
  return `needs the ${role} role; you are ${session ? session.role : "signed out"}`;
}

function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload + "=".repeat((4 - (payload.length % 4)) % 4)));
  } catch {
    return {};
  }
}

// --- local dev sign-in ------------------------------------------------------------------------

export async function devSignIn({ tenant, role, subject }) {
  const response = await fetch("/_dev/sign-in", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ tenant, role, subject: subject || "dev-user" }),
    credentials: "omit",
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `sign-in failed (${response.status})`);
  session = { subject: body.subject, tenant: body.tenant, role: body.role, token: body.token, expires_at: body.expires_at };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  changed();
  return whoami();
}

async function refreshDev() {
  const { tenant, role, subject } = session;
  await devSignIn({ tenant, role, subject });
}

// --- Firebase (production) --------------------------------------------------------------------

let fb = null;

async function firebaseModule() {
  if (!fb) fb = await import("../vendor/firebase.js");
  return fb;
}

async function startFirebase() {
  const mod = await firebaseModule();
  const app = mod.initializeApp(config.firebase);
  const auth = mod.getAuth(app);
  firebase = { auth, user: null };
  await new Promise((resolve) => {
    mod.onIdTokenChanged(auth, async (user) => {
      firebase.user = user;
      if (user) {
        const result = await user.getIdTokenResult();
        session = {
          subject: user.email || user.uid,
          tenant: result.claims.tenant || "",
          role: result.claims.role || "",
          token: null,
          expires_at: 0,
        };
      } else {
        session = null;
      }
      changed();
      resolve();
    });
  });
}

export async function firebaseSignIn({ email, password } = {}) {
  const mod = await firebaseModule();
  if (email) return mod.signInWithEmailAndPassword(firebase.auth, email, password);
  return mod.signInWithPopup(firebase.auth, new mod.GoogleAuthProvider());
}

// --- common -----------------------------------------------------------------------------------

export async function initAuth() {
  if (config.auth === "firebase") {
    await startFirebase();
    return;
  }
  const saved = sessionStorage.getItem(KEY);
  if (saved) {
    try {
      session = JSON.parse(saved);
    } catch {
      session = null;
    }
  }
  if (session && session.expires_at * 1000 < Date.now()) session = null;
  changed();
}

/** The bearer token for the next request (refreshed shortly before it expires). */
export async function currentToken() {
  if (!session) return null;
  if (config.auth === "firebase") return firebase && firebase.user ? firebase.user.getIdToken() : null;
  if (session.expires_at * 1000 - Date.now() < 120000) await refreshDev();
  return session.token;
}

export async function signOut() {
  if (config.auth === "firebase" && firebase) {
    const mod = await firebaseModule();
    await mod.signOut(firebase.auth);
  }
  session = null;
  sessionStorage.removeItem(KEY);
  changed();
}

/** The API refused the token: drop it, so the sign-in form shows. */
export function signOutExpired() {
  if (config.auth !== "firebase" && session && claimsOf(session.token).exp * 1000 < Date.now()) {
    session = null;
    sessionStorage.removeItem(KEY);
    changed();
  }
}
