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
  let delay = 1000;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/v1/events?org=${encodeURIComponent(org)}`);
    socket.addEventListener("open", () => { delay = 1000; });
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      const cell = table.querySelector(`tr[data-requestid="${CSS.escape(event.requestid)}"] td[data-field="status"]`);
      if (!cell) return;
      cell.textContent = event.new_status;
      cell.className = `status status-${event.new_status}`;
    });
    socket.addEventListener("close", () => {
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  connect();
})();
