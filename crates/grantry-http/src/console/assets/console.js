// Grantry console: small improvements on pages that work without JavaScript.
"use strict";

// Copy buttons: <button data-copy="#id"> copies the text of the element it names.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch (_) {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
});

// Permission boxes tick the boxes Bitbucket's form ticks with them (data-also="key key").
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!box.matches("input[type=checkbox][data-also]") || !box.checked) return;
  for (const key of box.dataset.also.split(" ")) {
    const other = document.querySelector(`input[type=checkbox][value="${key}"]`);
    if (other && !other.checked) {
      other.checked = true;
      other.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }
});

// Show only the fields of the chosen application.
function showApplication() {
  const select = document.querySelector("select[name=provider]");
  if (!select) return;
  for (const part of document.querySelectorAll("[data-provider]")) {
    part.hidden = part.dataset.provider !== select.value;
  }
}
document.addEventListener("change", (event) => {
  if (event.target.matches("select[name=provider]")) showApplication();
});
document.addEventListener("DOMContentLoaded", showApplication);

// The action bar's Edit and Delete wait for a profile to be chosen; a click anywhere on a row
// (but its links) chooses it. Without JavaScript the server asks for a choice instead.
function updateChoiceButtons() {
  const chosen = document.querySelector("input[type=radio][name=profile]:checked");
  for (const button of document.querySelectorAll("button[data-needs-choice]")) {
    button.disabled = !chosen;
  }
}
document.addEventListener("click", (event) => {
  const row = event.target.closest("tr");
  if (!row || event.target.closest("a, button, input, label")) return;
  const radio = row.querySelector("input[type=radio][name=profile]");
  if (radio) {
    radio.checked = true;
    updateChoiceButtons();
  }
});
document.addEventListener("change", (event) => {
  if (event.target.matches("input[type=radio][name=profile]")) updateChoiceButtons();
});
document.addEventListener("DOMContentLoaded", updateChoiceButtons);
