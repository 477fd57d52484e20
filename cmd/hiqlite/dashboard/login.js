"use strict";
// The login page: posts the token, then loads the dashboard.
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("error");
  err.hidden = true;
  try {
    const resp = await fetch("/dashboard/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Hiqlite-Dashboard": "1" },
      body: JSON.stringify({ token: document.getElementById("token").value }),
    });
    if (resp.ok) {
      location.reload();
      return;
    }
    const body = await resp.json().catch(() => ({}));
    err.textContent = body.error || resp.status + " " + resp.statusText;
  } catch (e) {
    err.textContent = String(e);
  }
  err.hidden = false;
});
