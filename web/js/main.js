// The page's entry point: signs in (or shows the form), then routes by the
// URL's hash to one view at a time. A view's render() returns a function
// that tears it down (timers, subscriptions) when the operator moves on.

import * as agents from "./agents.js";
import { onUnauthorized } from "./api.js";
import * as callPage from "./call-page.js";
import { $, h, replace } from "./dom.js";
import * as health from "./health.js";
import * as history from "./history.js";
import * as live from "./live.js";
import * as store from "./live-store.js";
import { stop as stopListening } from "./listen.js";
import * as overview from "./overview.js";
import * as session from "./session.js";
import * as testCall from "./test-call.js";

let teardown = null;
let signedIn = false;

function route() {
  if (!signedIn) return;
  teardown?.();
  teardown = null;
  const hash = location.hash.replace(/^#\/?/, "");
  const [section, ...rest] = hash.split("/");
  const view = $("#view");
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("current", a.dataset.route === (section || "live"));
  switch (section) {
    case "":
    case "live":
      teardown = live.render(view);
      break;
    case "calls":
      teardown = rest.length && rest[0] ? callPage.render(view, decodeURIComponent(rest[0])) : history.render(view);
      break;
    case "test":
      teardown = testCall.render(view);
      break;
    case "agents":
      teardown = agents.render(view);
      break;
    case "health":
      teardown = health.render(view);
      break;
    default:
      replace(view, h("h1", { text: "Not found" }), h("a", { href: "#/live", text: "Calls in progress" }));
  }
  document.body.dataset.view = section || "live";
}

async function enter() {
  signedIn = true;
  $("#signin").hidden = true;
  $("#nav").hidden = false;
  $("#view").hidden = false;
  // The budget and the step-in abilities are needed before the first card.
  await overview.load().catch(() => {});
  store.start();
  route();
  document.body.dataset.signedIn = "true";
}

function leave() {
  signedIn = false;
  teardown?.();
  teardown = null;
  stopListening();
  store.stop();
  $("#nav").hidden = true;
  $("#view").hidden = true;
  replace($("#view"));
  $("#signin").hidden = false;
  $("#token").value = "";
  $("#token").focus();
  document.body.dataset.signedIn = "false";
}

async function boot() {
  onUnauthorized(() => signedIn && leave());
  $("#signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = $("#signin-error");
    error.textContent = "";
    $("#signin-submit").disabled = true;
    try {
      await session.signIn($("#token").value);
      $("#token").value = "";
      await enter();
    } catch (err) {
      error.textContent = err.status === 401 ? "Wrong token." : err.message;
    } finally {
      $("#signin-submit").disabled = false;
    }
  });
  $("#sign-out").addEventListener("click", async () => {
    await session.signOut().catch(() => {});
    leave();
  });
  window.addEventListener("hashchange", route);

  let current = null;
  try {
    current = await session.current();
  } catch (e) {
    replace($("#view"), h("p", { class: "error", text: `Cannot reach the server: ${e.message}` }));
  }
  if (current) await enter();
  else leave();
}

boot();
