// Confirmations and prompts in the page's own <dialog> rather than
// window.confirm(): they read well on a phone, can say what is at stake, and
// a browser test can click them like any button.

import { $, h, replace } from "./dom.js";

/**
 * Resolves to true (confirmed) or false. With `input`, resolves to the typed
 * text or null; `mustType` makes OK wait until exactly that text is typed.
 */
export function ask({ title, text, ok = "OK", danger = false, input = null, mustType = null, cancel = true }) {
  const dialog = $("#dialog");
  $("#dialog-cancel").hidden = !cancel;
  $("#dialog-title").textContent = title;
  $("#dialog-text").textContent = text || "";
  const okButton = $("#dialog-ok");
  okButton.textContent = ok;
  okButton.className = danger ? "danger" : "";
  let field = null;
  if (input || mustType) {
    field = h(input === "textarea" ? "textarea" : "input", { id: "dialog-input", rows: 3, autocomplete: "off" });
    replace($("#dialog-field"), field);
  } else {
    replace($("#dialog-field"));
  }
  okButton.disabled = !!mustType;
  if (mustType) field.addEventListener("input", () => (okButton.disabled = field.value.trim() !== mustType));

  return new Promise((resolve) => {
    const done = (value) => {
      dialog.removeEventListener("close", onClose);
      $("#dialog-cancel").removeEventListener("click", onCancel);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onClose = () => {
      const confirmed = dialog.returnValue === "ok";
      if (input && !mustType) done(confirmed ? field.value : null);
      else done(confirmed);
    };
    const onCancel = () => {
      dialog.returnValue = "cancel";
      dialog.close();
    };
    $("#dialog-form").onsubmit = (e) => {
      e.preventDefault();
      if (okButton.disabled) return;
      dialog.returnValue = "ok";
      dialog.close();
    };
    dialog.addEventListener("close", onClose);
    $("#dialog-cancel").addEventListener("click", onCancel);
    dialog.returnValue = "";
    dialog.showModal();
    (field || okButton).focus();
  });
}

/** A short message with only an OK button. */
export function tell(title, text) {
  return ask({ title, text, cancel: false });
}
