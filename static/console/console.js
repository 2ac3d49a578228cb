// anchorage console: small progressive enhancement. Pages work without it; with it,
// pin statuses update live and secrets can be copied.
(() => {
  // Copy buttons: <button data-copy="element-id">.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select and copy";
      }
    });
  });

  // Live pin statuses from /v1/events (the session cookie authenticates it).
  const table = document.querySelector("table[data-live-org]");
  if (!table) return;
  const org = table.dataset.liveOrg;
  const update = (requestid, status) => {
    const cell = table.querySelector(`tr[data-requestid="${CSS.escape(requestid)}"] td[data-field="status"]`);
    if (!cell) return;
    cell.textContent = status;
    cell.className = `status status-${status}`;
  };
  let delay = 1000;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/v1/events?org=${encodeURIComponent(org)}`);
    socket.addEventListener("open", () => {
      delay = 1000;
      // Changes made before the socket opened (or while it was down) were not heard:
      // re-read every row that is still moving.
      table.querySelectorAll("tr[data-requestid]").forEach(async (row) => {
        const cell = row.querySelector('td[data-field="status"]');
        if (!cell || ["pinned", "failed"].includes(cell.textContent.trim())) return;
        const res = await fetch(`/v1/pins/${encodeURIComponent(row.dataset.requestid)}`, {
          credentials: "same-origin",
          headers: { "X-Anchorage-Org": org },
        });
        if (!res.ok) return;
        const pin = await res.json();
        update(row.dataset.requestid, pin.status);
      });
    });
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      update(event.requestid, event.new_status);
    });
    socket.addEventListener("close", () => {
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  connect();
})();
