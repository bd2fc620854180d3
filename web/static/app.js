// Small helpers for the status page. Every page works without this script.
document.addEventListener("DOMContentLoaded", () => {
  // Ask before an action that cannot be undone.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // Show how long is left on an override, counting down.
  for (const cell of document.querySelectorAll("[data-expires]")) {
    const ends = Number(cell.dataset.expires);
    const tick = () => {
      const left = Math.max(0, Math.round((ends - Date.now()) / 60000));
      cell.textContent = left > 0 ? `${left} min left` : "ended";
    };
    tick();
    setInterval(tick, 30000);
  }
  // The unlock form: show only the field that the chosen "For" needs.
  const scopes = document.querySelectorAll("input[name=scope]");
  const showScopeField = () => {
    const chosen = document.querySelector("input[name=scope]:checked");
    for (const scope of ["device", "room"]) {
      const field = document.getElementById(`${scope}-field`);
      if (field) field.hidden = !(chosen && chosen.value === scope);
    }
  };
  for (const radio of scopes) radio.addEventListener("change", showScopeField);
  if (scopes.length > 0) showScopeField();
});
